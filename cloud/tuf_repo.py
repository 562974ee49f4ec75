"""The cloud's TUF repository (python-tuf metadata), served as static files under ``/v1/tuf/``.

Four roles, one Ed25519 key each. The root and targets keys belong to the operator
and may live offline: :func:`init_repository` writes them to a keys folder the
operator keeps (``fleet tuf init --keys-dir``), and they are needed only to publish a
model (targets) and to rotate keys (root). The snapshot and timestamp keys live in the
repository's ``keys/`` folder, and the service re-signs those two roles itself
(:meth:`TufRepository.refresh`), the timestamp with a short life so a unit notices a
frozen mirror.

Consistent snapshots are on: every metadata version is kept as ``N.<role>.json`` and
every target as ``<sha256>.<name>``, so each file is immutable and may be cached
forever; only ``timestamp.json`` changes in place. Writes take a file lock and
replace files atomically, so a reader sees an old file or a new one.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from cloud.errors import CloudError, ConflictError, NotFoundError
from models.atomic import atomic_write

OPERATOR_ROLES: Final[tuple[str, ...]] = (Root.type, Targets.type)
SERVICE_ROLES: Final[tuple[str, ...]] = (Snapshot.type, Timestamp.type)
ROOT_EXPIRY: Final[timedelta] = timedelta(days=365)
TARGETS_EXPIRY: Final[timedelta] = timedelta(days=365)

T = TypeVar("T", Root, Targets, Snapshot, Timestamp)


class TufError(CloudError, RuntimeError):
    """The TUF repository is missing, or a key does not fit the role it is used for."""

    code = "tuf_error"
    status = 500


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def key_file(keys_dir: Path, role: str) -> Path:
    """Where the private key of ``role`` is kept in a keys folder."""
    return Path(keys_dir) / f"{role}.pem"


def save_signer(path: Path, signer: CryptoSigner) -> None:
    """Write a signer's private key (PKCS#8 PEM, mode 0600), atomically."""
    with atomic_write(path, "wb", perms=0o600) as f:
        f.write(signer.private_bytes)


def load_signer(path: Path) -> CryptoSigner:
    """A signer from a PEM Ed25519 private key file."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise TufError(f"no key file {path}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise TufError(f"{path} is not an Ed25519 key")
    return CryptoSigner(key)


@dataclass(frozen=True)
class TufRepository:
    """A repository folder: ``metadata/``, ``targets/`` and the service keys in ``keys/``."""

    path: Path
    timestamp_expiry: timedelta = timedelta(days=1)
    snapshot_expiry: timedelta = timedelta(days=7)
    clock: Callable[[], datetime] = _now

    @classmethod
    def from_settings(cls, settings: Any, **kw: Any) -> TufRepository:
        """The repository named by the cloud settings."""
        return cls(
            Path(settings.tuf_dir),
            timedelta(seconds=settings.tuf_timestamp_expiry_s),
            timedelta(seconds=settings.tuf_snapshot_expiry_s),
            **kw,
        )

    @property
    def metadata_dir(self) -> Path:
        return self.path / "metadata"

    @property
    def targets_dir(self) -> Path:
        return self.path / "targets"

    @property
    def keys_dir(self) -> Path:
        return self.path / "keys"

    def exists(self) -> bool:
        """True once ``fleet tuf init`` has made the repository."""
        return (self.metadata_dir / "1.root.json").is_file()

    def _require(self) -> None:
        if not self.exists():
            raise NotFoundError(
                f"no TUF repository at {self.path}: run `shelfsense fleet tuf init`",
                code="no_repository",
            )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / ".lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- reading ------------------------------------------------------------------------

    def load(self, role: type[T]) -> Metadata[T]:
        """The newest metadata of a role."""
        self._require()
        md: Metadata[T] = Metadata.from_file(str(self.metadata_dir / f"{role.type}.json"))
        if not isinstance(md.signed, role):
            raise TufError(f"{role.type}.json holds {md.signed.type} metadata")
        return md

    def root_bytes(self, version: int = 1) -> bytes:
        """A root version's file: version 1 is what units are provisioned to trust."""
        self._require()
        return (self.metadata_dir / f"{version}.root.json").read_bytes()

    def metadata_file(self, name: str) -> Path:
        """The file of a metadata name (``timestamp.json``, ``3.snapshot.json`` …)."""
        self._require()
        path = self.metadata_dir / name
        if not path.is_file():
            raise NotFoundError(f"no metadata {name}", code="no_metadata")
        return path

    def target_file(self, name: str) -> Path:
        """The file of a hash-prefixed target name."""
        self._require()
        path = self.targets_dir / name
        if not path.is_file():
            raise NotFoundError(f"no target {name}", code="no_target")
        return path

    # -- writing ------------------------------------------------------------------------

    def _write(self, md: Metadata[Any], *, versioned: bool) -> None:
        data = md.to_bytes(JSONSerializer(compact=False))
        role = md.signed.type
        if versioned:
            with atomic_write(
                self.metadata_dir / f"{md.signed.version}.{role}.json", "wb", perms=0o644
            ) as f:
                f.write(data)
        with atomic_write(self.metadata_dir / f"{role}.json", "wb", perms=0o644) as f:
            f.write(data)

    def _service_signer(self, role: str) -> CryptoSigner:
        return load_signer(key_file(self.keys_dir, role))

    def _check_signer(self, root: Root, role: str, signer: Signer) -> None:
        if signer.public_key.keyid not in root.roles[role].keyids:
            raise TufError(f"that key is not a {role} key of this repository's root")

    def _new_snapshot_and_timestamp(self, targets_version: int) -> None:
        now = self.clock()
        snap = self.load(Snapshot)
        snap.signed.meta[f"{Targets.type}.json"] = MetaFile(version=targets_version)
        snap.signed.version += 1
        snap.signed.expires = now + self.snapshot_expiry
        snap.sign(self._service_signer(Snapshot.type))
        self._write(snap, versioned=True)
        self._new_timestamp(snap.signed.version)

    def _new_timestamp(self, snapshot_version: int) -> None:
        ts = self.load(Timestamp)
        ts.signed.snapshot_meta = MetaFile(version=snapshot_version)
        ts.signed.version += 1
        ts.signed.expires = self.clock() + self.timestamp_expiry
        ts.sign(self._service_signer(Timestamp.type))
        self._write(ts, versioned=False)

    def add_target(self, name: str, local: Path, targets_signer: Signer) -> TargetFile:
        """Add (or replace) target ``name`` from file ``local``; signs targets, snapshot, timestamp."""
        with self._locked():
            root = self.load(Root).signed
            self._check_signer(root, Targets.type, targets_signer)
            info = TargetFile.from_file(name, str(local), ["sha256"])
            dest = self.targets_dir / f"{info.hashes['sha256']}.{name}"
            self.targets_dir.mkdir(parents=True, exist_ok=True)
            with atomic_write(dest, "wb", perms=0o644) as f, Path(local).open("rb") as src:
                shutil.copyfileobj(src, f)
            targets = self.load(Targets)
            targets.signed.targets[name] = info
            targets.signed.version += 1
            targets.signed.expires = self.clock() + TARGETS_EXPIRY
            targets.sign(targets_signer)
            self._write(targets, versioned=True)
            self._new_snapshot_and_timestamp(targets.signed.version)
        return info

    def refresh(self, *, force: bool = False) -> bool:
        """Re-sign the timestamp (and snapshot) once half their life is gone; True if it did."""
        if not self.exists():
            return False
        with self._locked():
            now = self.clock()
            snap = self.load(Snapshot)
            if force or snap.signed.expires - now < self.snapshot_expiry / 2:
                self._new_snapshot_and_timestamp(self.load(Targets).signed.version)
                return True
            ts = self.load(Timestamp)
            if force or ts.signed.expires - now < self.timestamp_expiry / 2:
                self._new_timestamp(snap.signed.version)
                return True
        return False

    def rotate_root(self, old: Signer, new: CryptoSigner) -> int:
        """A new root version with ``new`` in place of ``old`` as root key, signed by both."""
        with self._locked():
            md = self.load(Root)
            self._check_signer(md.signed, Root.type, old)
            md.signed.revoke_key(old.public_key.keyid, Root.type)
            md.signed.add_key(new.public_key, Root.type)
            md.signed.version += 1
            md.signed.expires = self.clock() + ROOT_EXPIRY
            md.sign(old)
            md.sign(new, append=True)
            self._write(md, versioned=True)
        return md.signed.version


def init_repository(repo: TufRepository, keys_dir: Path) -> Path:
    """Make a new repository: four keys, root 1 and empty targets; returns the trusted root file.

    The root and targets keys go to ``keys_dir`` (the operator's, kept offline), the
    snapshot and timestamp keys to the repository's ``keys/`` folder (the service's).
    """
    if repo.exists():
        raise ConflictError(f"{repo.path} already holds a TUF repository", code="repository_exists")
    for role in OPERATOR_ROLES:
        if key_file(keys_dir, role).exists():
            raise ConflictError(f"{key_file(keys_dir, role)} exists; use another --keys-dir")
    signers: dict[str, CryptoSigner] = {}
    for role in (*OPERATOR_ROLES, *SERVICE_ROLES):
        signers[role] = CryptoSigner.generate_ed25519()
        where = keys_dir if role in OPERATOR_ROLES else repo.keys_dir
        Path(where).mkdir(parents=True, exist_ok=True, mode=0o700)
        save_signer(key_file(where, role), signers[role])
    now = repo.clock()
    root = Root(expires=now + ROOT_EXPIRY, consistent_snapshot=True)
    for role, signer in signers.items():
        root.add_key(signer.public_key, role)
    mds: list[Metadata[Any]] = [
        Metadata(root),
        Metadata(Targets(expires=now + TARGETS_EXPIRY)),
        Metadata(Snapshot(expires=now + repo.snapshot_expiry)),
        Metadata(Timestamp(expires=now + repo.timestamp_expiry)),
    ]
    repo.metadata_dir.mkdir(parents=True, exist_ok=True)
    repo.targets_dir.mkdir(parents=True, exist_ok=True)
    with repo._locked():
        for md in mds:
            md.sign(signers[md.signed.type])
            repo._write(md, versioned=md.signed.type != Timestamp.type)
    os.chmod(repo.keys_dir, 0o700)
    return repo.metadata_dir / "1.root.json"
