"""Files that must never be half-written: write a temporary file beside, then rename.

:func:`atomic_write` yields a file opened in the target's folder; when the block ends
without an error the data is flushed (and fsynced unless ``durable=False``) and the
file is renamed over the target with ``os.replace``, so a reader sees the old file or
the new one, never a mix. On an error the temporary file is removed and the old file
stays as it was. Calibration, the stock book, the seq mark, exports, broker files and
the simulator's outputs are all written this way. :func:`replace_symlink` switches a
pointer (the model slot in use) the same way, and :func:`swap_dir` puts a folder built
whole beside its place (a model bundle) where the old one was. A durable write also
fsyncs the folder after the rename, so the new name survives a power cut.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(
    path: Path | str, mode: str = "w", *, perms: int | None = None, durable: bool = True
) -> Iterator[IO[Any]]:
    """Open a temporary file to write ``path`` whole (``mode`` "w" or "wb").

    ``perms`` sets the file mode (the temporary file starts at 0600); ``durable=False``
    skips the fsync for files rewritten often whose loss costs nothing (a status file).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', not {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if perms is not None:
            os.chmod(tmp, perms)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)


def write_text_atomic(
    path: Path | str, text: str, *, perms: int | None = None, durable: bool = True
) -> None:
    """Replace ``path`` with ``text`` whole."""
    with atomic_write(path, perms=perms, durable=durable) as f:
        f.write(text)


def fsync_dir(path: Path | str) -> None:
    """Make a rename or a new link in folder ``path`` durable (POSIX: fsync the folder)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_symlink(link: Path | str, target: str, *, durable: bool = True) -> None:
    """Point ``link`` at ``target`` in one step: a new link beside it renamed over it.

    A reader sees the old target or the new one, never no link; ``durable`` fsyncs the
    folder so the change survives a power cut.
    """
    link = Path(link)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(link.parent)


def swap_dir(built: Path | str, dest: Path | str, *, durable: bool = True) -> None:
    """Put the folder ``built`` (complete, beside ``dest``) at ``dest``, replacing any there.

    A rename cannot replace a folder that has files, so an old ``dest`` is renamed
    aside first, ``built`` renamed into place, then the old one removed: a reader sees
    the old folder or the new one whole (for an instant, neither). ``durable`` fsyncs
    the parent folder after the renames; the files inside must be fsynced by the caller.
    """
    built, dest = Path(built), Path(dest)
    if built.parent.resolve() != dest.parent.resolve():
        raise ValueError(f"{built} must be built in the folder of {dest} to be renamed over it")
    old: Path | None = None
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    os.replace(built, dest)
    if durable:
        fsync_dir(dest.parent)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def fsync_tree(folder: Path | str) -> None:
    """fsync every file directly in ``folder`` and the folder itself (before a swap)."""
    folder = Path(folder)
    for p in folder.iterdir():
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    fsync_dir(folder)
