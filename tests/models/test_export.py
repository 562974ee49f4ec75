"""Export: optimum first, ``torch.onnx.export`` when optimum breaks; int8 keeps the decisions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.runtime.onnx import OnnxBackend
from models.tokens import ShelfTokenizer
from models.train import export
from models.train.model import build_model
from tests.models.factory import make_records


def _model():
    torch.manual_seed(1)
    tok = ShelfTokenizer.default()
    return tok, build_model("student-tiny", vocab_size=tok.vocab_size, max_len=tok.max_len).eval()


def test_fallback_exporter_gives_the_same_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok, model = _model()

    def broken(*_: object) -> None:
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(export, "_optimum_export", broken)
    path = tmp_path / "m.onnx"
    assert export.export_onnx(model, path) == "torch.onnx.export"
    enc = tok.encode(make_records(1, seed=4)[0].window)
    ids = np.asarray([enc.ids], np.int64)
    interest, stock = OnnxBackend(path).run(ids, np.ones_like(ids))
    with torch.no_grad():
        ref = model(
            input_ids=torch.tensor(ids), attention_mask=torch.ones(ids.shape, dtype=torch.long)
        )
    np.testing.assert_allclose(interest, ref.interest_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(stock, ref.stock_logits.numpy(), atol=1e-4)


def test_int8_is_smaller_and_close(tmp_path: Path) -> None:
    tok, model = _model()
    fp32, int8 = tmp_path / "f.onnx", tmp_path / "q.onnx"
    assert export.export_onnx(model, fp32) == "optimum-onnx"
    export.quantize_int8(fp32, int8)
    assert int8.stat().st_size < fp32.stat().st_size
    enc = tok.encode(make_records(1, seed=5)[0].window)
    ids = np.asarray([enc.ids], np.int64)
    a = OnnxBackend(fp32).run(ids, np.ones_like(ids))[0]
    b = OnnxBackend(int8).run(ids, np.ones_like(ids))[0]
    assert np.abs(a - b).max() < 0.5


def test_tflite_export_says_when_litert_torch_is_missing(tmp_path: Path) -> None:
    _, model = _model()
    try:
        import litert_torch  # noqa: F401
    except ImportError:
        assert export.export_tflite(model, tmp_path / "m.tflite") is False
        assert not (tmp_path / "m.tflite").exists()
