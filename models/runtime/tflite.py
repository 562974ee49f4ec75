"""The LiteRT backend for ``model.tflite``: ``ai_edge_litert`` first, then ``tflite_runtime``.

``tflite-runtime`` 2.14 is the last release of that package and cannot load models
made by current converters, so ``ai_edge_litert`` (same ``Interpreter`` API) is tried
first. A model with dynamic dimensions has its inputs resized to each batch. A model
converted for one fixed shape (what litert-torch makes of the student: batch 1, the
tokenizer's longest sentence) gets every row padded to its length and runs the batch
in slices of its batch size; the stock logits are cut back to the caller's length.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import BackendError
from models.runtime.base import FloatArray, InferenceBackend, IntArray

INTERPRETER_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")
INPUT_NAMES = ("input_ids", "attention_mask")


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
            self._it.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise BackendError(f"LiteRT cannot load {self.model_path}: {err}") from None
        details = self._it.get_input_details()
        self._in = {key: self._find(details, key) for key in INPUT_NAMES}
        ids = self._in["input_ids"]
        self._fixed = bool(np.all(np.asarray(ids["shape_signature"]) > 0))
        self._rows, self._length = (int(x) for x in ids["shape"])
        self._shape: tuple[int, ...] = (self._rows, self._length)
        self._out = [int(d["index"]) for d in self._it.get_output_details()]

    def _find(self, details: list[dict[str, Any]], key: str) -> dict[str, Any]:
        for d in details:
            if key in d["name"]:
                return d
        names = sorted(d["name"] for d in details)
        raise BackendError(f"{self.model_path}: no input named like {key!r} in {names}")

    def run(self, input_ids: IntArray, attention_mask: IntArray) -> tuple[FloatArray, FloatArray]:
        """Run one batch: logits of shape ``(B, n_interest)`` and ``(B, L, n_stock)``."""
        batch, length = input_ids.shape
        if not self._fixed:
            return self._invoke(input_ids, attention_mask)
        if length > self._length:
            raise BackendError(
                f"{self.model_path}: {length} tokens, the model takes at most {self._length}"
            )
        pad = ((0, 0), (0, self._length - length))
        ids, mask = np.pad(input_ids, pad), np.pad(attention_mask, pad)
        parts = []
        for start in range(0, batch, self._rows):
            rows = slice(start, start + self._rows)
            fill = ((0, self._rows - len(ids[rows])), (0, 0))
            i_logits, s_logits = self._invoke(np.pad(ids[rows], fill), np.pad(mask[rows], fill))
            parts.append((i_logits[: len(ids[rows])], s_logits[: len(ids[rows])]))
        interest = np.concatenate([p[0] for p in parts])
        stock = np.concatenate([p[1] for p in parts])[:, :length]
        return interest, stock

    def _invoke(self, ids: IntArray, mask: IntArray) -> tuple[FloatArray, FloatArray]:
        feeds = {"input_ids": ids, "attention_mask": mask}
        try:
            if tuple(ids.shape) != self._shape:
                for d in self._in.values():
                    self._it.resize_tensor_input(int(d["index"]), list(ids.shape))
                self._it.allocate_tensors()
                self._shape = tuple(ids.shape)
            for key, d in self._in.items():
                self._it.set_tensor(int(d["index"]), feeds[key].astype(d["dtype"]))
            self._it.invoke()
        except (ValueError, RuntimeError) as err:
            raise BackendError(f"LiteRT cannot run {self.model_path}: {err}") from None
        outs = [self._it.get_tensor(i) for i in self._out]
        interest = next((o for o in outs if o.ndim == 2), None)
        stock = next((o for o in outs if o.ndim == 3), None)
        if interest is None or stock is None:
            raise BackendError(f"{self.model_path}: outputs {[o.shape for o in outs]}")
        return interest.astype(np.float32), stock.astype(np.float32)
