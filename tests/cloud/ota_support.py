"""Bundles as `cloud train` leaves them (bundle/ and metrics.json), without training a model.

``verify_bundle`` checks signatures, hashes and the vocabulary, not the model, so a
few random bytes stand in for ``model.onnx``: the registry and the TUF repository
handle the archive, never run it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from models.bundle import MODEL_ONNX, public_key_pem, write_bundle
from models.tokens import ShelfTokenizer


def train_output(
    out: Path, key: Ed25519PrivateKey, version: int, *, gates_pass: bool = True
) -> Path:
    """A `cloud train --out` folder holding a signed bundle of ``version``; returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    onnx = out / "stand-in.onnx"
    onnx.write_bytes(os.urandom(2048))
    tok = ShelfTokenizer.default()
    write_bundle(
        out / "bundle",
        files={MODEL_ONNX: onnx},
        tokenizer=tok,
        golden=[{"input_ids": [[1, 2, 3]], "attention_mask": [[1, 1, 1]]}],
        version=version,
        model={"vocab_size": tok.vocab_size, "max_len": tok.max_len},
        metrics={"student int8": {"interest": 0.71, "stock": 0.83}},
        signing_key=key,
    )
    onnx.unlink()
    gates = [
        {"name": "student int8 within 0.9 of teacher", "passed": True, "detail": ""},
        {"name": "golden outputs reproduce", "passed": gates_pass, "detail": ""},
    ]
    facts = {
        "training windows": 1200,
        "held-out windows": 300,
        "training from": "2026-11-01T00:00:00+00:00",
        "training to": "2026-11-30T00:00:00+00:00",
        "int8/fp32 agreement": 0.98,
    }
    (out / "metrics.json").write_text(json.dumps({"scores": {}, "gates": gates, "facts": facts}))
    (out / "trusted-key.pem").write_bytes(public_key_pem(key))
    return out
