"""Atomic file writes: the old file stays whole until the new one is complete."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from models.atomic import atomic_write, write_text_atomic


def test_writes_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "a.json"
    write_text_atomic(p, "one", perms=0o644)
    assert p.read_text() == "one"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o644
    assert sorted(x.name for x in p.parent.iterdir()) == ["a.json"]


def test_an_error_keeps_the_old_file(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(p) as f:
        f.write("half of the new")
        raise RuntimeError("power cut")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_binary_and_refused_modes(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "b.bin", "wb", durable=False) as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "c", "a"):
        pass
