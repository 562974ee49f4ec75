"""The LiteRT backend for ``model.tflite``: ``ai_edge_litert`` first, then ``tflite_runtime``.

``tflite-runtime`` 2.14 is the last release of that package and cannot load models
made by current converters, so ``ai_edge_litert`` (same ``Interpreter`` API) is tried
first. Tensors are resized to each batch's shape before it runs.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import BackendError
from models.runtime.base import FloatArray, InferenceBackend, IntArray

INTERPRETER_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


def find_interpreter() -> Any:
    """The first ``Interpreter`` class importable, or ``BackendError`` naming what was tried."""
    tried = []
    for name in INTERPRETER_MODULES:
        try:
            return importlib.import_module(name).Interpreter
        except ImportError as err:
            tried.append(f"{name} ({err})")
    raise BackendError("no LiteRT interpreter: tried " + "; ".join(tried))


class TfliteBackend(InferenceBackend):
    """A LiteRT ``Interpreter`` over ``model.tflite``."""

    name = "tflite"
    model_file = "model.tflite"

    def __init__(self, model_path: Path, *, threads: int = 1) -> None:
        super().__init__(model_path, threads=threads)
        interpreter_cls = find_interpreter()
        try:
            self._it = interpreter_cls(model_path=str(self.model_path), num_threads=threads)
        except (ValueError, RuntimeError) as err:
            raise BackendError(f"LiteRT cannot load {self.model_path}: {err}") from None
        self._inputs = {d["name"].split(":")[0]: d for d in self._it.get_input_details()}
        self._outputs = self._it.get_output_details()
        self._shape: tuple[int, ...] | None = None

    def _index(self, key: str) -> int:
        for name, d in self._inputs.items():
            if key in name:
                return int(d["index"])
        raise BackendError(f"{self.model_path}: no input named like {key!r}")

    def run(self, input_ids: IntArray, attention_mask: IntArray) -> tuple[FloatArray, FloatArray]:
        """Run one batch (resizing the input tensors when the shape changed)."""
        ids_i, mask_i = self._index("input_ids"), self._index("attention_mask")
        if self._shape != input_ids.shape:
            self._it.resize_tensor_input(ids_i, list(input_ids.shape))
            self._it.resize_tensor_input(mask_i, list(input_ids.shape))
            self._it.allocate_tensors()
            self._shape = tuple(input_ids.shape)
        dtype = {d["index"]: d["dtype"] for d in self._inputs.values()}
        self._it.set_tensor(ids_i, input_ids.astype(dtype[ids_i]))
        self._it.set_tensor(mask_i, attention_mask.astype(dtype[mask_i]))
        self._it.invoke()
        outs = [self._it.get_tensor(d["index"]) for d in self._outputs]
        interest = next(o for o in outs if o.ndim == 2)
        stock = next(o for o in outs if o.ndim == 3)
        return interest.astype(np.float32), stock.astype(np.float32)
