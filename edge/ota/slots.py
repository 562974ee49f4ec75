"""A/B model slots on disk: two bundle folders and one pointer, switched atomically.

Beside ``model.bundle_dir`` (``var/models/current``) live ``slot-a`` and ``slot-b``;
``current`` is a symbolic link to one of them, so everything that loads
``model.bundle_dir`` follows it. The other slot holds the previous bundle. A new
bundle is written into the other slot (:meth:`Slots.begin_stage`: its ``COMPLETE``
mark goes first, so a half-written slot is never taken for a bundle), checked, marked
complete (:meth:`Slots.mark_complete`) and only then pointed to (:meth:`Slots.point`,
one ``os.replace`` of the link and an fsync of the folder). A ``kill -9`` at any
moment leaves ``current`` on a complete bundle: the old one or the new one.

A unit installed before the slots existed has a plain folder at ``current``;
:meth:`Slots.open` moves it into ``slot-a`` first (one rename, then the link).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError
from models.atomic import fsync_dir, replace_symlink, write_text_atomic

SLOT_NAMES = ("slot-a", "slot-b")
COMPLETE = "COMPLETE"


class SlotError(EdgeError, OSError):
    """The model slots cannot be used (a pointer that is not ours, a slot that is missing)."""


@dataclass(frozen=True)
class Slots:
    """The two slots and the ``current`` pointer beside ``bundle_dir``."""

    current_link: Path

    @classmethod
    def open(cls, bundle_dir: Path | str) -> Slots:
        """The slots of ``bundle_dir`` (made, and an older plain folder moved in, if need be)."""
        slots = cls(Path(bundle_dir))
        slots.root.mkdir(parents=True, exist_ok=True)
        link = slots.current_link
        if link.is_dir() and not link.is_symlink():  # installed before the slots
            dest = slots.root / SLOT_NAMES[0]
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(link, dest)
            write_text_atomic(dest / COMPLETE, "moved in\n")
            replace_symlink(link, dest.name)
        return slots

    @property
    def root(self) -> Path:
        return self.current_link.parent

    def slot(self, name: str) -> Path:
        """The folder of slot ``name``."""
        return self.root / name

    def current_name(self) -> str | None:
        """The slot ``current`` points to (None: no model installed)."""
        if not self.current_link.is_symlink():
            return None
        name = os.readlink(self.current_link)
        if name not in SLOT_NAMES:
            raise SlotError(f"{self.current_link} points to {name!r}, not a model slot")
        return name

    def other_name(self) -> str:
        """The slot not in use: the previous bundle, or where the next one is staged."""
        cur = self.current_name()
        return SLOT_NAMES[1] if cur == SLOT_NAMES[0] else SLOT_NAMES[0]

    def complete(self, name: str) -> bool:
        """True when slot ``name`` holds a bundle that was checked whole."""
        return (self.slot(name) / COMPLETE).is_file()

    def version_of(self, name: str | None) -> int | None:
        """The version in a complete slot's manifest (None: empty, partial or unreadable)."""
        if name is None or not self.complete(name):
            return None
        try:
            version = json.loads((self.slot(name) / "manifest.json").read_text())["version"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return version if isinstance(version, int) else None

    def current_version(self) -> int | None:
        """The version in use."""
        return self.version_of(self.current_name())

    def previous_version(self) -> int | None:
        """The version kept in the other slot (None: none kept)."""
        return self.version_of(self.other_name())

    def find(self, version: int) -> str | None:
        """The complete slot holding ``version``."""
        return next((n for n in SLOT_NAMES if self.version_of(n) == version), None)

    def begin_stage(self) -> Path:
        """Empty the slot not in use and return it; its old bundle is gone from here on."""
        name = self.other_name()
        path = self.slot(name)
        (path / COMPLETE).unlink(missing_ok=True)
        if path.exists():
            fsync_dir(path)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def mark_complete(self, path: Path) -> None:
        """Mark a staged slot as checked whole (its files fsynced first)."""
        for f in path.iterdir():
            if f.is_file():
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        write_text_atomic(path / COMPLETE, "checked\n")
        fsync_dir(path)

    def point(self, name: str) -> None:
        """Make slot ``name`` the one in use: one atomic pointer change, fsynced."""
        if name not in SLOT_NAMES or not self.complete(name):
            raise SlotError(f"slot {name!r} holds no complete bundle")
        replace_symlink(self.current_link, name)

    def clear(self) -> None:
        """Use no model (the rules decide): remove the pointer, keep both slots."""
        self.current_link.unlink(missing_ok=True)
        fsync_dir(self.root)
