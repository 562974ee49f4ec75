"""Model bundles: one folder, signed, verified before anything in it is used.

A bundle holds ``manifest.json`` (format, integer version, labels, the stock
decoding — ``physics-mask-v1``, see :mod:`models.physics` —, model shape, metrics, sha256 and size of every other file, created, minimum agent version),
``model.onnx`` (int8), optionally ``model.tflite``, ``vocab.json`` (the tokenizer
file), ``golden.jsonl`` (inputs with the outputs the bundle must reproduce, one
batch per line at the batch size it was made with) and ``manifest.sig``, a detached
Ed25519 signature over the exact bytes of ``manifest.json``. Signing the manifest
signs every file through its hashes.

:func:`write_bundle` builds the folder next to its destination and renames it into
place; :func:`verify_bundle` is pure checking (no model is run) and raises
:class:`~models.errors.BundleError` with the reason. Running the golden outputs is
the runtime's job (``models.runtime``), since it needs a backend.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from models.atomic import fsync_tree, swap_dir
from models.errors import BundleError
from models.guard import Guard
from models.labels import HEADS
from models.physics import DECODING
from models.rules import RuleBaseline
from models.tokens import ShelfTokenizer

BUNDLE_FORMAT: Final[int] = 1
MANIFEST: Final[str] = "manifest.json"
SIGNATURE: Final[str] = "manifest.sig"
MODEL_ONNX: Final[str] = "model.onnx"
MODEL_TFLITE: Final[str] = "model.tflite"
VOCAB: Final[str] = "vocab.json"
GOLDEN: Final[str] = "golden.jsonl"
REQUIRED: Final[tuple[str, ...]] = (MODEL_ONNX, VOCAB, GOLDEN)
MAX_BUNDLE_BYTES: Final[int] = 5 * 1024 * 1024


# -- keys ---------------------------------------------------------------------------------


def generate_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 signing key."""
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The public half of ``key`` as SubjectPublicKeyInfo PEM."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """Read a PEM Ed25519 private key; raises ``BundleError`` for anything else."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError("signing key is not an Ed25519 key")
    return key


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Read a PEM Ed25519 public key; raises ``BundleError`` for anything else."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as err:
        raise BundleError(f"not a PEM public key: {err}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError("trusted key is not an Ed25519 key")
    return key


# -- the manifest -------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk: its folder, manifest and tokenizer."""

    path: Path
    manifest: dict[str, Any]
    tokenizer: ShelfTokenizer

    @property
    def version(self) -> int:
        """The bundle's model version (monotonically increasing)."""
        return int(self.manifest["version"])

    @property
    def labels(self) -> dict[str, list[str]]:
        """Labels per head, in logit order."""
        return {k: list(v) for k, v in self.manifest["labels"].items()}

    @property
    def decoding(self) -> str:
        """How the runtime decodes the stock head (bundles made before the key: the same)."""
        return str(self.manifest.get("decoding", DECODING))

    @property
    def guard(self) -> Guard:
        """Who decides each head per crowding bucket (no ``guard`` key: the model everywhere)."""
        raw = self.manifest.get("guard")
        return Guard() if raw is None else Guard.from_dict(raw)

    def file(self, name: str) -> Path:
        """Path of one of the bundle's files."""
        return self.path / name

    def has(self, name: str) -> bool:
        """True when the manifest lists ``name``."""
        return name in self.manifest["files"]

    def golden(self) -> list[dict[str, Any]]:
        """The golden batches (inputs and the outputs to reproduce)."""
        lines = self.file(GOLDEN).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split(".")[:3])
    except ValueError:
        raise BundleError(f"bad version string {v!r}") from None


def write_bundle(
    dest: Path,
    *,
    files: Mapping[str, Path],
    tokenizer: ShelfTokenizer,
    golden: Sequence[Mapping[str, Any]],
    version: int,
    model: Mapping[str, Any],
    metrics: Mapping[str, Any],
    signing_key: Ed25519PrivateKey,
    min_agent_version: str = "0.1.0",
    created: datetime | None = None,
    guard: Guard | None = None,
) -> Bundle:
    """Build a signed bundle at ``dest`` atomically; returns it verified.

    ``files`` maps bundle names (``model.onnx``, optionally ``model.tflite``) to files
    to copy in. ``guard`` (:mod:`models.guard`) says per crowding bucket whether the
    student or the fitted rules decide each head. The folder is built beside ``dest`` and renamed into place, so a reader
    sees the old bundle or the new one, never half of one.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for name, src in files.items():
            shutil.copyfile(src, tmp / name)
        tokenizer.save(tmp / VOCAB)
        (tmp / GOLDEN).write_text(
            "".join(json.dumps(g, separators=(",", ":")) + "\n" for g in golden), encoding="utf-8"
        )
        names = sorted({*files, VOCAB, GOLDEN})
        manifest = {
            "format": BUNDLE_FORMAT,
            "version": int(version),
            "created": (created or datetime.now(UTC)).isoformat(),
            "min_agent_version": min_agent_version,
            "labels": {k: list(v) for k, v in HEADS.items()},
            "decoding": DECODING,
            "model": dict(model),
            "metrics": dict(metrics),
            **({"guard": guard.to_dict()} if guard is not None else {}),
            "files": {
                n: {"sha256": _sha256(tmp / n), "bytes": (tmp / n).stat().st_size} for n in names
            },
        }
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        (tmp / MANIFEST).write_bytes(body)
        (tmp / SIGNATURE).write_bytes(base64.b64encode(signing_key.sign(body)) + b"\n")
        fsync_tree(tmp)
        swap_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return verify_bundle(dest, trusted_keys=[signing_key.public_key()])


def verify_bundle(
    path: Path,
    *,
    trusted_keys: Sequence[Ed25519PublicKey],
    agent_version: str = "99.0.0",
) -> Bundle:
    """Check a bundle folder completely before use; raises ``BundleError`` with the reason.

    Checks, in order: the manifest parses and its format is one this code knows; the
    signature verifies under a trusted key; every listed file exists with its size and
    sha256; the required files are listed; labels match the taxonomy; the agent is new
    enough; the guard, if any, and its rule thresholds parse; the tokenizer loads and
    every id it and the golden inputs can produce lies inside the model's embedding table.
    """
    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path}: missing {MANIFEST}")
    body = mpath.read_bytes()
    try:
        manifest = json.loads(body)
    except ValueError as err:
        raise BundleError(f"{path}: {MANIFEST} is not JSON: {err}") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: {MANIFEST} is not an object")
    fmt = manifest.get("format")
    if not isinstance(fmt, int) or fmt < 1:
        raise BundleError(f"{path}: manifest format {fmt!r} is not a format number")
    if fmt > BUNDLE_FORMAT:
        raise BundleError(
            f"{path}: manifest format {fmt} is newer than this agent reads ({BUNDLE_FORMAT})"
        )
    _check_signature(path, body, trusted_keys)
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{path}: manifest lists no files")
    for name in REQUIRED:
        if name not in files:
            raise BundleError(f"{path}: manifest does not list required file {name}")
    total = 0
    for name, meta in files.items():
        f = path / name
        if "/" in name or name.startswith("."):
            raise BundleError(f"{path}: file name {name!r} is not allowed")
        if not f.is_file():
            raise BundleError(f"{path}: missing file {name}")
        size = f.stat().st_size
        total += size
        if size != meta.get("bytes"):
            raise BundleError(f"{path}: {name} has {size} bytes, manifest says {meta.get('bytes')}")
        if _sha256(f) != meta.get("sha256"):
            raise BundleError(f"{path}: {name} sha256 does not match the manifest")
    if total > MAX_BUNDLE_BYTES:
        raise BundleError(f"{path}: bundle is {total} bytes, more than {MAX_BUNDLE_BYTES}")
    if manifest.get("labels") != {k: list(v) for k, v in HEADS.items()}:
        raise BundleError(f"{path}: labels {manifest.get('labels')} differ from this agent's")
    need = str(manifest.get("min_agent_version", "0"))
    if _version_tuple(need) > _version_tuple(agent_version):
        raise BundleError(f"{path}: needs agent {need}, this is {agent_version}")
    try:
        tokenizer = ShelfTokenizer.load(path / VOCAB)
    except ValueError as err:
        raise BundleError(f"{path}: {VOCAB}: {err}") from None
    model = manifest.get("model") or {}
    vocab_size = model.get("vocab_size")
    if not isinstance(vocab_size, int) or vocab_size < 1:
        raise BundleError(f"{path}: manifest model.vocab_size missing")
    if tokenizer.vocab_size > vocab_size:
        raise BundleError(
            f"{path}: token ids run to {tokenizer.vocab_size - 1}, "
            f"past the model's {vocab_size}-token embedding"
        )
    bundle = Bundle(path, manifest, tokenizer)
    try:
        guard = bundle.guard
        if guard.rules is not None:
            RuleBaseline.from_dict(dict(guard.rules))
    except ValueError as err:
        raise BundleError(f"{path}: manifest {err}") from None
    try:
        golden = bundle.golden()
    except ValueError as err:
        raise BundleError(f"{path}: {GOLDEN} is not JSON lines: {err}") from None
    if not golden:
        raise BundleError(f"{path}: {GOLDEN} holds no batch")
    for g in golden:
        ids = [i for row in g.get("input_ids", []) for i in row]
        if not ids or min(ids) < 0 or max(ids) >= vocab_size:
            raise BundleError(f"{path}: golden input ids outside 0..{vocab_size - 1}")
    return bundle


def _check_signature(path: Path, body: bytes, keys: Sequence[Ed25519PublicKey]) -> None:
    spath = path / SIGNATURE
    if not spath.is_file():
        raise BundleError(f"{path}: missing signature {SIGNATURE}")
    if not keys:
        raise BundleError(f"{path}: no trusted key to check the signature with")
    try:
        sig = base64.b64decode(spath.read_bytes().strip(), validate=True)
    except ValueError:
        raise BundleError(f"{path}: signature is not base64") from None
    for key in keys:
        try:
            key.verify(sig, body)
            return
        except InvalidSignature:
            continue
    raise BundleError(f"{path}: bad signature (no trusted key signed this manifest)")
