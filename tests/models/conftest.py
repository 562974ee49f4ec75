"""A small real bundle (random tiny student, exported and quantized) shared by the model tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from models.bundle import MODEL_ONNX, generate_key, write_bundle
from models.guard import Guard
from models.tokens import ShelfTokenizer
from tests.models.factory import make_records


@dataclass
class BuiltBundle:
    """A bundle folder with the key that signed it and its model file."""

    path: Path
    key: Ed25519PrivateKey
    onnx: Path
    version: int


def build_bundle(
    tmp: Path, *, version: int = 1, seed: int = 0, guard: Guard | None = None
) -> BuiltBundle:
    """Export a random-init tiny student, quantize it, and write a signed bundle."""
    import torch

    from models.runtime.onnx import OnnxBackend
    from models.train.data import encode_records, split_records
    from models.train.export import export_onnx, quantize_int8
    from models.train.model import build_model
    from models.train.pipeline import golden_batches

    torch.manual_seed(seed)
    tok = ShelfTokenizer.default()
    model = build_model("student-tiny", vocab_size=tok.vocab_size, max_len=tok.max_len)
    fp32, int8 = tmp / f"m{version}-fp32.onnx", tmp / f"m{version}-int8.onnx"
    export_onnx(model, fp32)
    quantize_int8(fp32, int8)
    items = encode_records(split_records(make_records(12, seed), tok), tok)
    golden = golden_batches(OnnxBackend(int8), items, (1, 8))
    key = generate_key()
    dest = tmp / f"bundle-v{version}"
    write_bundle(
        dest,
        files={MODEL_ONNX: int8},
        tokenizer=tok,
        golden=golden,
        version=version,
        model={"vocab_size": tok.vocab_size, "max_len": tok.max_len},
        metrics={},
        signing_key=key,
        guard=guard,
    )
    return BuiltBundle(dest, key, int8, version)


@pytest.fixture(scope="session")
def bundle_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltBundle]:
    """One built bundle for the session (tests copy it before damaging it)."""
    yield build_bundle(tmp_path_factory.mktemp("bundle"))
