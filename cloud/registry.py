"""The model registry: gated, signed bundles made by ``cloud train``, published as TUF targets.

:func:`read_candidate` checks a folder before anything is stored: the bundle's
signature under a trusted key (``models.bundle.verify_bundle``) and every release gate
in the training report beside it (``metrics.json``). :func:`publish` then requires a
version higher than any published, packs the bundle into one tar archive
(deterministic: sorted names, zero times and owners), adds it to the TUF repository
as ``model-v<N>.tar`` (signed with the operator's targets key) and records its
metrics, training data, size and hash.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from securesystemslib.signer import Signer
from sqlalchemy import Connection, func, insert, select

from cloud.errors import ConflictError, InvalidRequestError, NotFoundError
from cloud.ota_schemas import ModelPublic
from cloud.store.tables import model_versions
from cloud.tuf_repo import TufRepository
from models.bundle import MANIFEST, Bundle, verify_bundle
from models.errors import BundleError

REPORT = "metrics.json"


class BundleRefusedError(InvalidRequestError):
    """A bundle that may not be published: bad signature, failed gates, no report."""

    code = "bundle_refused"


def target_name(version: int) -> str:
    """The TUF target path of a model version."""
    return f"model-v{version}.tar"


@dataclass(frozen=True)
class Candidate:
    """A verified bundle with what its training report says."""

    bundle: Bundle
    gates: list[dict[str, Any]]
    training: dict[str, Any]
    metrics: dict[str, Any]


def _locate(folder: Path) -> tuple[Path, Path]:
    if (folder / MANIFEST).is_file():
        return folder, folder.parent
    if (folder / "bundle" / MANIFEST).is_file():
        return folder / "bundle", folder
    raise BundleRefusedError(f"{folder}: neither a bundle nor a `cloud train` output folder")


def confusion_matrices(scores: object) -> dict[str, dict[str, dict[str, list[Any]]]]:
    """The confusion matrices of a training report's ``scores`` (contender -> head ->
    labels and matrix, rows true), skipping any that is not a square of counts."""
    out: dict[str, dict[str, dict[str, list[Any]]]] = {}
    if not isinstance(scores, dict):
        return out
    for name, heads in scores.items():
        for head, figures in (heads if isinstance(heads, dict) else {}).items():
            if not isinstance(figures, dict):
                continue
            labels, matrix = figures.get("labels"), figures.get("confusion")
            if (
                isinstance(labels, list)
                and isinstance(matrix, list)
                and len(matrix) == len(labels)
                and all(isinstance(r, list) and len(r) == len(labels) for r in matrix)
                and all(isinstance(v, int) and v >= 0 for r in matrix for v in r)
            ):
                out.setdefault(str(name), {})[str(head)] = {
                    "labels": [str(x) for x in labels],
                    "matrix": matrix,
                }
    return out


def read_candidate(folder: Path, trusted_keys: Sequence[Ed25519PublicKey]) -> Candidate:
    """The bundle in ``folder`` (a bundle, or the ``--out`` of ``cloud train``), checked."""
    bundle_dir, report_dir = _locate(Path(folder))
    try:
        bundle = verify_bundle(bundle_dir, trusted_keys=trusted_keys)
    except BundleError as err:
        raise BundleRefusedError(f"bundle refused: {err}") from None
    try:
        report = json.loads((report_dir / REPORT).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleRefusedError(
            f"no training report {report_dir / REPORT}: cannot tell whether its gates passed"
        ) from None
    except ValueError as err:
        raise BundleRefusedError(f"{report_dir / REPORT} is not JSON: {err}") from None
    gates = report.get("gates") if isinstance(report, dict) else None
    if not isinstance(gates, list) or not gates:
        raise BundleRefusedError(f"{report_dir / REPORT} lists no gates")
    failed = [g.get("name", "?") for g in gates if not (isinstance(g, dict) and g.get("passed"))]
    if failed:
        raise BundleRefusedError("gates did not pass: " + ", ".join(map(str, failed)))
    facts = report.get("facts") or {}
    training = {
        key: facts[name]
        for key, name in (
            ("windows", "training windows"),
            ("heldout_windows", "held-out windows"),
            ("from", "training from"),
            ("to", "training to"),
        )
        if name in facts
    }
    metrics = dict(bundle.manifest.get("metrics") or {})
    if "int8/fp32 agreement" in facts:
        metrics["int8_fp32_agreement"] = facts["int8/fp32 agreement"]
    confusion = confusion_matrices(report.get("scores"))
    if confusion:
        metrics["confusion"] = confusion
    return Candidate(bundle, gates, training, metrics)


def pack(bundle: Bundle, dest: Path) -> tuple[int, str]:
    """Write the bundle folder as a deterministic tar at ``dest``; its size and sha256."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in bundle.path.iterdir() if p.is_file()):
            info = tarfile.TarInfo(f"bundle/{path.name}")
            info.size = path.stat().st_size
            info.mode = 0o644
            info.mtime = 0
            with path.open("rb") as f:
                tar.addfile(info, f)
    data = dest.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def latest_version(conn: Connection) -> int | None:
    """The highest published version, if any."""
    value = conn.execute(select(func.max(model_versions.c.version))).scalar()
    return None if value is None else int(value)


def publish(
    conn: Connection,
    repo: TufRepository,
    candidate: Candidate,
    targets_signer: Signer,
    *,
    now: datetime | None = None,
) -> ModelPublic:
    """Record the candidate and add it to the TUF repository (inside ``conn``'s transaction)."""
    version = candidate.bundle.version
    latest = latest_version(conn)
    if latest is not None and version <= latest:
        raise ConflictError(
            f"version {version} is not higher than the published {latest}",
            field="version",
            code="version_not_newer",
        )
    manifest = candidate.bundle.manifest
    created = datetime.fromisoformat(manifest["created"])
    name = target_name(version)
    row: dict[str, Any] = {
        "version": version,
        "target_name": name,
        "manifest": {k: v for k, v in manifest.items() if k != "files"},
        "metrics": candidate.metrics,
        "training": candidate.training,
        "created_at": created if created.tzinfo else created.replace(tzinfo=UTC),
        "published_at": now or datetime.now(UTC),
    }
    with tempfile.TemporaryDirectory(prefix=".publish-", dir=repo.path) as tmp:
        archive = Path(tmp) / name
        size, digest = pack(candidate.bundle, archive)
        row |= {"bytes": size, "sha256": digest}
        conn.execute(insert(model_versions).values(**row))
        repo.add_target(name, archive, targets_signer)
    return ModelPublic.model_validate(row)


def list_models(conn: Connection) -> list[ModelPublic]:
    """Every published version, newest first."""
    rows = conn.execute(select(model_versions).order_by(model_versions.c.version.desc()))
    return [ModelPublic.model_validate(dict(r._mapping)) for r in rows]


def get_model(conn: Connection, version: int) -> ModelPublic:
    """One published version."""
    row = conn.execute(select(model_versions).where(model_versions.c.version == version)).first()
    if row is None:
        raise NotFoundError(f"no published model version {version}", field="version")
    return ModelPublic.model_validate(dict(row._mapping))


def bundle_from_archive(data: bytes, dest: Path) -> Path:
    """Unpack a model archive into ``dest`` (names checked); the bundle folder."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith("bundle/") or ".." in member.name:
                raise BundleRefusedError(f"archive member {member.name!r} is not allowed")
        tar.extractall(dest, filter="data")
    return dest / "bundle"
