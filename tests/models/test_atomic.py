"""Atomic file writes: the old file stays whole until the new one is complete."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import models.atomic
from models.atomic import atomic_write, swap_dir, write_text_atomic


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


def _fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record the folders fsynced through models.atomic (and still fsync them)."""
    seen: list[Path] = []
    real = models.atomic.fsync_dir

    def record(path: Path | str) -> None:
        seen.append(Path(path))
        real(path)

    monkeypatch.setattr(models.atomic, "fsync_dir", record)
    return seen


def test_a_durable_write_fsyncs_the_folder_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _fsyncs(monkeypatch)
    write_text_atomic(tmp_path / "a", "x", durable=False)
    assert seen == []
    write_text_atomic(tmp_path / "b", "y")
    assert seen == [tmp_path]


def _built(parent: Path, name: str, text: str) -> Path:
    d = parent / name
    d.mkdir()
    (d / "manifest.json").write_text(text)
    (d / "sub").mkdir()
    (d / "sub" / "x").write_text(text)
    return d


def test_swap_dir_into_an_empty_place_and_over_an_old_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _fsyncs(monkeypatch)
    dest = tmp_path / "bundle"
    swap_dir(_built(tmp_path, ".b1", "one"), dest)
    assert (dest / "manifest.json").read_text() == "one"
    swap_dir(_built(tmp_path, ".b2", "two"), dest)
    assert (dest / "manifest.json").read_text() == "two"
    assert (dest / "sub" / "x").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no old copy left
    assert seen == [tmp_path, tmp_path]
    swap_dir(_built(tmp_path, ".b3", "three"), dest, durable=False)
    assert seen == [tmp_path, tmp_path]
    assert (dest / "manifest.json").read_text() == "three"


def test_swap_dir_refuses_a_folder_built_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    built = _built(tmp_path / "a", "new", "x")
    with pytest.raises(ValueError, match="must be built in the folder"):
        swap_dir(built, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
    assert (built / "manifest.json").read_text() == "x"
