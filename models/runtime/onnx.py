"""The onnxruntime backend (the default on a unit).

onnxruntime >= 1.32 writes a telemetry store under ``$HOME/.cache`` unless
``ORT_DISABLE_TELEMETRY=1``; this module sets it before onnxruntime is imported
(SD-card wear, privacy). One intra-op thread by default: a Pi runs other work too;
no memory arena and no memory pattern, so memory follows the batch in hand.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from models.errors import BackendError
from models.runtime.base import FloatArray, InferenceBackend, IntArray

os.environ["ORT_DISABLE_TELEMETRY"] = "1"


class OnnxBackend(InferenceBackend):
    """An ``onnxruntime.InferenceSession`` on the CPU with a fixed thread count."""

    name = "onnx"
    model_file = "model.onnx"

    def __init__(self, model_path: Path, *, threads: int = 1) -> None:
        super().__init__(model_path, threads=threads)
        try:
            import onnxruntime as ort
        except ImportError as err:  # pragma: no cover - the edge extra installs it
            raise BackendError(f"onnxruntime is not installed: {err}") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        # A unit classifies one small batch now and then: no arena kept for peaks, no
        # planned buffers per shape (a few MB less resident on a 1 GB Pi).
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
        try:
            self._session: Any = ort.InferenceSession(
                str(self.model_path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise BackendError(f"onnxruntime cannot load {self.model_path}: {err}") from None
        names = {i.name for i in self._session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= names:
            raise BackendError(
                f"{self.model_path}: inputs {sorted(names)} lack input_ids/attention_mask"
            )

    def run(self, input_ids: IntArray, attention_mask: IntArray) -> tuple[FloatArray, FloatArray]:
        """Run one batch."""
        interest, stock = self._session.run(
            ["interest_logits", "stock_logits"],
            {"input_ids": input_ids, "attention_mask": attention_mask},
        )
        return interest, stock
