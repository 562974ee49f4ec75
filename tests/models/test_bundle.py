"""Bundles: written atomically, and refused at load with the reason when anything is off."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from models.bundle import (
    GOLDEN,
    MANIFEST,
    MAX_BUNDLE_BYTES,
    MODEL_ONNX,
    SIGNATURE,
    VOCAB,
    _sha256,
    generate_key,
    load_public_key,
    public_key_pem,
    verify_bundle,
)
from models.errors import BundleError
from tests.models.conftest import BuiltBundle


def copy(b: BuiltBundle, tmp: Path) -> Path:
    dest = tmp / "b"
    shutil.copytree(b.path, dest)
    return dest


def resign(path: Path, key, edit) -> None:
    """Edit the manifest (and re-sign it with the trusted key): a well-signed bad bundle."""
    manifest = json.loads((path / MANIFEST).read_text())
    edit(manifest)
    body = json.dumps(manifest).encode()
    (path / MANIFEST).write_bytes(body)
    (path / SIGNATURE).write_bytes(base64.b64encode(key.sign(body)))


def rehash(manifest: dict, path: Path, name: str) -> None:
    manifest["files"][name] = {
        "sha256": _sha256(path / name),
        "bytes": (path / name).stat().st_size,
    }


def test_a_written_bundle_verifies(bundle_factory: BuiltBundle) -> None:
    b = verify_bundle(bundle_factory.path, trusted_keys=[bundle_factory.key.public_key()])
    assert b.version == 1
    assert set(b.manifest["files"]) == {MODEL_ONNX, VOCAB, GOLDEN}
    assert sum(p.stat().st_size for p in bundle_factory.path.iterdir()) < MAX_BUNDLE_BYTES
    assert [g["batch_size"] for g in b.golden()] == [1, 8]
    assert len(b.golden()[1]["input_ids"]) == 8


def test_public_key_pem_round_trip(bundle_factory: BuiltBundle) -> None:
    pub = load_public_key(public_key_pem(bundle_factory.key))
    verify_bundle(bundle_factory.path, trusted_keys=[pub])
    with pytest.raises(BundleError, match="PEM"):
        load_public_key(b"not a key")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p, k: (p / VOCAB).unlink(), "missing file vocab.json"),
        (lambda p, k: (p / MANIFEST).unlink(), "missing manifest.json"),
        (lambda p, k: (p / SIGNATURE).unlink(), "missing signature"),
        (
            lambda p, k: (p / MODEL_ONNX).write_bytes((p / MODEL_ONNX).read_bytes()[:-1] + b"\0"),
            "sha256",
        ),
        (lambda p, k: (p / GOLDEN).write_text("{}\n"), "bytes"),
        (
            lambda p, k: (p / SIGNATURE).write_bytes(base64.b64encode(generate_key().sign(b"x"))),
            "bad signature",
        ),
        (
            lambda p, k: (p / MANIFEST).write_bytes(
                (p / MANIFEST).read_bytes().replace(b'"version": 1', b'"version": 9')
            ),
            "bad signature",
        ),
        (lambda p, k: resign(p, k, lambda m: m.update(format=2)), "newer"),
        (lambda p, k: resign(p, k, lambda m: m["model"].update(vocab_size=50)), "past the model"),
        (
            lambda p, k: resign(p, k, lambda m: m.update(labels={"interest": ["x"], "stock": []})),
            "labels",
        ),
        (lambda p, k: resign(p, k, lambda m: m.update(min_agent_version="100.0.0")), "needs agent"),
        (
            lambda p, k: resign(p, k, lambda m: m["files"].pop(MODEL_ONNX)),
            "required file model.onnx",
        ),
    ],
)
def test_bad_bundles_are_refused_with_the_reason(
    bundle_factory: BuiltBundle, tmp_path: Path, damage, reason: str
) -> None:
    path = copy(bundle_factory, tmp_path)
    damage(path, bundle_factory.key)
    with pytest.raises(BundleError, match=reason):
        verify_bundle(path, trusted_keys=[bundle_factory.key.public_key()], agent_version="0.1.0")


def test_golden_ids_outside_the_vocabulary_are_refused(
    bundle_factory: BuiltBundle, tmp_path: Path
) -> None:
    path = copy(bundle_factory, tmp_path)
    lines = (path / GOLDEN).read_text().splitlines()
    g = json.loads(lines[0])
    g["input_ids"][0][1] = 10_000
    (path / GOLDEN).write_text(json.dumps(g) + "\n")
    resign(path, bundle_factory.key, lambda m: rehash(m, path, GOLDEN))
    with pytest.raises(BundleError, match="golden input ids"):
        verify_bundle(path, trusted_keys=[bundle_factory.key.public_key()])


def test_an_untrusted_signer_is_refused(bundle_factory: BuiltBundle) -> None:
    with pytest.raises(BundleError, match="bad signature"):
        verify_bundle(bundle_factory.path, trusted_keys=[generate_key().public_key()])
    with pytest.raises(BundleError, match="no trusted key"):
        verify_bundle(bundle_factory.path, trusted_keys=[])


def test_rewriting_a_bundle_replaces_it_whole(tmp_path: Path) -> None:
    from tests.models.conftest import build_bundle

    first = build_bundle(tmp_path, version=1)
    second = build_bundle(tmp_path, version=2)
    shutil.rmtree(second.path)
    shutil.copytree(first.path, second.path)  # v1 at the v2 place; now overwrite it
    from models.bundle import Bundle, write_bundle
    from models.tokens import ShelfTokenizer

    b = verify_bundle(first.path, trusted_keys=[first.key.public_key()])
    out: Bundle = write_bundle(
        second.path,
        files={MODEL_ONNX: first.onnx},
        tokenizer=ShelfTokenizer.default(),
        golden=b.golden(),
        version=3,
        model=b.manifest["model"],
        metrics={},
        signing_key=first.key,
    )
    assert out.version == 3
    assert verify_bundle(second.path, trusted_keys=[first.key.public_key()]).version == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
