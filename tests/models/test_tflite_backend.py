"""The ``tflite`` backend on a real converted student: same decisions as the ``onnx`` one.

A tiny student is fine-tuned for a moment on generated windows, exported to int8 ONNX
and (through litert-torch) to ``model.tflite``, and both go into one signed bundle whose
golden outputs come from the ONNX model. The LiteRT runtime must load that bundle
(warm-up and golden replay included) and decide like onnxruntime. Skipped only where no
LiteRT interpreter is importable; where one is, the converter (``tflite-convert`` extra)
is needed too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from models.bundle import MODEL_ONNX, MODEL_TFLITE, generate_key, write_bundle
from models.errors import BackendError
from models.runtime import ModelRuntime
from models.runtime.tflite import TfliteBackend, find_interpreter
from models.tokens import ShelfTokenizer, pad_batch
from tests.models.factory import make_records

try:
    find_interpreter()
except BackendError as _err:
    pytest.skip(f"no LiteRT runtime: {_err}", allow_module_level=True)


@dataclass
class LiteBundle:
    """A signed bundle carrying both model files, and the key that signed it."""

    path: Path
    key: Ed25519PrivateKey
    tflite: Path
    fp32: Path


@pytest.fixture(scope="module")
def lite_bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteBundle]:
    """Fine-tune a tiny student briefly, export it both ways, bundle it with ONNX goldens."""
    import torch

    from models.runtime.onnx import OnnxBackend
    from models.train.data import encode_records, split_records
    from models.train.export import export_onnx, export_tflite, quantize_int8
    from models.train.fit import StageArgs, finetune
    from models.train.model import build_model
    from models.train.pipeline import golden_batches

    tmp = tmp_path_factory.mktemp("lite")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    tok = ShelfTokenizer.default()
    model = build_model("student-tiny", vocab_size=tok.vocab_size, max_len=tok.max_len)
    items = encode_records(split_records(make_records(160, seed=31), tok), tok)
    finetune(model, items, StageArgs(epochs=2, batch_size=16, lr=3e-3, progress=False))
    fp32, int8, lite = tmp / "fp32.onnx", tmp / "int8.onnx", tmp / "model.tflite"
    export_onnx(model, fp32)
    quantize_int8(fp32, int8)
    if not export_tflite(model, lite):
        pytest.fail("a LiteRT runtime is installed but litert-torch is not (tflite-convert extra)")
    golden = golden_batches(OnnxBackend(int8), items, (1, 8))
    key = generate_key()
    dest = tmp / "bundle"
    write_bundle(
        dest,
        files={MODEL_ONNX: int8, MODEL_TFLITE: lite},
        tokenizer=tok,
        golden=golden,
        version=1,
        model={"vocab_size": tok.vocab_size, "max_len": tok.max_len},
        metrics={},
        signing_key=key,
    )
    yield LiteBundle(dest, key, lite, fp32)


def test_tflite_runtime_loads_the_bundle_and_decides_like_onnx(lite_bundle: LiteBundle) -> None:
    keys = [lite_bundle.key.public_key()]
    lite, onnx = (ModelRuntime(trusted_keys=keys, backend=b) for b in ("tflite", "onnx"))
    assert lite.load(lite_bundle.path).version == 1
    onnx.load(lite_bundle.path)
    windows = [r.window for r in make_records(60, seed=32)]
    for batch in (1, 5):
        got, want = lite.classify(windows, batch_size=batch), onnx.classify(windows, batch_size=1)
        assert len(got) == len(windows)
        same = [g.interest == w.interest for g, w in zip(got, want, strict=True)]
        assert np.mean(same) >= 0.9
        for g, w, win in zip(got, want, windows, strict=True):
            assert len(g.stock) == len(w.stock) == len(win.changes)
            assert abs(g.interest_confidence - w.interest_confidence) < 0.1


def test_fixed_shape_model_pads_splits_and_matches_fp32_onnx(lite_bundle: LiteBundle) -> None:
    from models.runtime.onnx import OnnxBackend

    backend = TfliteBackend(lite_bundle.tflite)
    tok = ShelfTokenizer.default()
    encoded = [tok.encode(r.window) for r in make_records(7, seed=33)]
    ids, mask = (np.asarray(x, np.int64) for x in pad_batch(encoded))
    interest, stock = backend.run(ids, mask)
    assert interest.shape[0] == stock.shape[0] == len(encoded)
    assert stock.shape[1] == ids.shape[1]
    one_by_one = np.concatenate([backend.run(ids[i : i + 1], mask[i : i + 1])[0] for i in range(7)])
    np.testing.assert_allclose(interest, one_by_one, atol=1e-5)
    ref_interest, ref_stock = OnnxBackend(lite_bundle.fp32).run(ids, mask)
    np.testing.assert_allclose(interest, ref_interest, atol=1e-4)
    real = mask.astype(bool)
    np.testing.assert_allclose(stock[real], ref_stock[real], atol=1e-4)
    too_long = np.zeros((1, tok.max_len + 1), np.int64)
    with pytest.raises(BackendError, match="at most"):
        backend.run(too_long, np.ones_like(too_long))
