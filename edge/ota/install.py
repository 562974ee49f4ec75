"""Putting a bundle into the slot not in use and switching to it: offline installs and OTA.

:func:`stage` fills the slot not in use (a copy of a folder, or an unpacked archive),
verifies the copy (signature, hashes, agent version) and, when given, runs ``check``
on it (the OTA client loads it and replays its golden outputs) before marking it
complete. :func:`install_bundle` is ``edge install-model``: it refuses a version older
than the one in use unless ``allow_downgrade``, stages, then points ``current`` at the
new slot. The bundle it replaces stays in the other slot.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.errors import EdgeError
from edge.ota.slots import Slots
from models.bundle import MAX_BUNDLE_BYTES, Bundle, verify_bundle
from models.errors import BundleError

Fill = Callable[[Path], None]
Check = Callable[[Path], None]


class DowngradeError(EdgeError, ValueError):
    """A bundle older than the one in use, installed without ``--allow-downgrade``."""


def copy_folder(src: Path) -> Fill:
    """Fill a slot with the files of bundle folder ``src``."""

    def fill(dest: Path) -> None:
        for f in sorted(Path(src).iterdir()):
            if f.is_file():
                shutil.copyfile(f, dest / f.name)

    return fill


def unpack_archive(data: bytes) -> Fill:
    """Fill a slot from a model archive (``bundle/<file>`` members only, bounded)."""

    def fill(dest: Path) -> None:
        total = 0
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                name = m.name.removeprefix("bundle/")
                if not m.isfile() or m.name == name or "/" in name or name.startswith("."):
                    raise BundleError(f"archive member {m.name!r} is not a bundle file")
                total += m.size
                if total > MAX_BUNDLE_BYTES:
                    raise BundleError(f"archive unpacks past {MAX_BUNDLE_BYTES} bytes")
                src = tar.extractfile(m)
                assert src is not None
                with (dest / name).open("wb") as out:
                    shutil.copyfileobj(src, out)

    return fill


def stage(
    slots: Slots,
    fill: Fill,
    *,
    trusted_keys: Sequence[Ed25519PublicKey],
    agent_version: str,
    check: Check | None = None,
) -> tuple[str, Bundle]:
    """Write, verify and mark complete a bundle in the slot not in use; its name and bundle."""
    path = slots.begin_stage()
    fill(path)
    bundle = verify_bundle(path, trusted_keys=trusted_keys, agent_version=agent_version)
    if check is not None:
        check(path)
    slots.mark_complete(path)
    return path.name, bundle


def install_bundle(
    src: Path,
    bundle_dir: Path,
    *,
    trusted_keys: Sequence[Ed25519PublicKey],
    agent_version: str,
    allow_downgrade: bool = False,
) -> tuple[Bundle, int | None]:
    """Install bundle folder ``src`` as ``bundle_dir`` via the slots; the bundle and the one replaced.

    A bundle of the version already in use changes nothing.

    Raises ``BundleError`` (refused), :class:`DowngradeError` or ``OSError``.
    """
    incoming = verify_bundle(src, trusted_keys=trusted_keys, agent_version=agent_version)
    slots = Slots.open(bundle_dir)
    current = slots.current_version()
    if current == incoming.version:
        return incoming, current  # already in use: nothing to do
    if current is not None and incoming.version < current and not allow_downgrade:
        raise DowngradeError(
            f"version {incoming.version} is older than {current} in use "
            "(give --allow-downgrade to install it anyway)"
        )
    name, bundle = stage(
        slots, copy_folder(src), trusted_keys=trusted_keys, agent_version=agent_version
    )
    slots.point(name)
    return bundle, current
