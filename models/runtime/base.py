"""The inference backend interface: token ids in, logits of both heads out.

A backend wraps one model file and one engine (onnxruntime, LiteRT). It is chosen by
name from the explicit registry in :mod:`models.runtime.registry` and knows nothing about
bundles, labels or windows; :class:`models.runtime.classifier.ModelRuntime` does that.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


class InferenceBackend(ABC):
    """One loaded model: :meth:`run` maps a padded batch to ``(interest, stock)`` logits.

    ``interest`` has shape ``(batch, n_interest)``; ``stock`` has shape
    ``(batch, seq_len, n_stock)`` (the caller reads the ``[CHG]`` positions).
    Constructors raise :class:`~models.errors.BackendError` when the engine or the model
    cannot be loaded.
    """

    name: ClassVar[str]
    model_file: ClassVar[str]

    def __init__(self, model_path: Path, *, threads: int = 1) -> None:
        self.model_path = Path(model_path)
        self.threads = threads

    @abstractmethod
    def run(self, input_ids: IntArray, attention_mask: IntArray) -> tuple[FloatArray, FloatArray]:
        """Logits of both heads for one padded batch."""
