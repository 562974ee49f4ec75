"""The student to ONNX (through optimum-onnx), then to int8 (onnxruntime dynamic quantization).

optimum exports a model it knows by an ``OnnxConfig``; :class:`ShelfOnnxConfig` tells it
ours: inputs ``input_ids`` and ``attention_mask`` (dynamic batch and length), outputs
``interest_logits`` and ``stock_logits``. When optimum's exporter fails (it traces with
the TorchScript exporter, which breaks across torch releases), ``torch.onnx.export`` is
used with the same names and axes, and the report says which path ran.

Dynamic int8 stores weights as int8 and computes activation scales per batch at run
time, so int8 outputs depend (slightly) on the batch they run in.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from models.train.model import ShelfBert

log = logging.getLogger(__name__)
OPSET = 17
INPUTS = ("input_ids", "attention_mask")
OUTPUTS = ("interest_logits", "stock_logits")


def _optimum_export(model: ShelfBert, path: Path) -> None:
    from optimum.exporters.onnx import export
    from optimum.exporters.onnx.model_configs import BertOnnxConfig

    class ShelfOnnxConfig(BertOnnxConfig):
        """Our two inputs and two heads, for optimum's exporter."""

        @property
        def inputs(self) -> dict[str, dict[int, str]]:
            axes = {0: "batch_size", 1: "sequence_length"}
            return {"input_ids": dict(axes), "attention_mask": dict(axes)}

        @property
        def outputs(self) -> dict[str, dict[int, str]]:
            return {
                "interest_logits": {0: "batch_size"},
                "stock_logits": {0: "batch_size", 1: "sequence_length"},
            }

    cfg = ShelfOnnxConfig(model.config, task="text-classification")
    export(model=model, config=cfg, output=path, opset=OPSET)


def _torch_export(model: ShelfBert, path: Path) -> None:
    ids = torch.full((2, 16), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    axes = {0: "batch_size", 1: "sequence_length"}
    torch.onnx.export(
        _Heads(model).eval(),
        (ids, mask),
        str(path),
        input_names=list(INPUTS),
        output_names=list(OUTPUTS),
        dynamic_axes={
            "input_ids": axes,
            "attention_mask": axes,
            "interest_logits": {0: "batch_size"},
            "stock_logits": axes,
        },
        opset_version=OPSET,
        dynamo=False,
    )


class _Heads(torch.nn.Module):
    """The model as a function of two tensors returning two tensors (for converters)."""

    def __init__(self, m: ShelfBert) -> None:
        super().__init__()
        self.m = m

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.m(input_ids=input_ids, attention_mask=attention_mask)
        return out.interest_logits, out.stock_logits


def export_tflite(model: ShelfBert, path: Path, *, seq_len: int | None = None) -> bool:
    """Write ``model.tflite`` through litert-torch when the ``tflite-convert`` extra is installed.

    Returns ``False`` (and writes nothing) when litert-torch is missing. litert-torch
    lowers through JAX, which (litert-torch 0.10, torch 2.13) cannot keep a batch or
    sequence dimension of the BERT embeddings symbolic, so the model is converted for
    one fixed ``(1, seq_len)`` shape; ``seq_len`` defaults to the model's position table,
    which is sized to the tokenizer's longest sentence. The LiteRT backend pads each
    window to it and runs a batch row by row. Inputs keep their names (``input_ids``,
    ``attention_mask``) and become int32; the model stays fp32.
    """
    try:
        import litert_torch
    except ImportError:
        return False
    model = model.eval().to("cpu")
    n = int(seq_len or model.config.max_position_embeddings)
    ids = torch.full((1, n), 5, dtype=torch.long)
    sample = dict(zip(INPUTS, (ids, torch.ones_like(ids)), strict=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    edge_model = litert_torch.convert(_Heads(model).eval(), sample_kwargs=sample)
    edge_model.export(str(path))
    return True


def export_onnx(model: ShelfBert, path: Path) -> str:
    """Write ``model`` as fp32 ONNX at ``path``; returns the exporter used."""
    model = model.eval().to("cpu")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            _optimum_export(model, path)
        return "optimum-onnx"
    except Exception as err:  # any exporter failure falls back, and the report says so
        log.warning("optimum export failed (%s); using torch.onnx.export", err)
        path.unlink(missing_ok=True)
        _torch_export(model, path)
        return "torch.onnx.export"
    finally:
        model.eval()  # exporters restore the training flag of what they traced


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of an ONNX model (int8 weights, uint8 activations)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Gemm"],
    )
