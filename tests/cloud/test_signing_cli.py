"""``fleet keys signing``: the model-signing pair made once, shown again, never overwritten."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from models.bundle import load_private_key, load_public_key, public_key_pem
from shelfsense.cli import main


def test_the_pair_is_made_once_and_shown_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "signing"
    assert main(["fleet", "keys", "signing", "--dir", str(folder)]) == 0
    made = capsys.readouterr().out
    private, public = folder / "model-signing.pem", folder / "model-signing.pub.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = load_private_key(private.read_bytes())
    assert public.read_bytes() == public_key_pem(key)
    load_public_key(public.read_bytes())
    assert "made a new signing key" in made and public.read_text().strip() in made
    assert f"--signing-key {private}" in made
    assert "SHELFSENSE_CLOUD_SIGNING_PUBLIC_KEY_FILE=" in made

    before = private.read_bytes()
    public.unlink()  # a lost public half is made again from the private key
    assert main(["fleet", "keys", "signing", "--dir", str(folder)]) == 0
    again = capsys.readouterr().out
    assert "already made" in again and private.read_bytes() == before
    assert public.read_bytes() == public_key_pem(key)


def test_a_file_that_is_not_a_key_is_named_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "model-signing.pem").write_text("not a key")
    assert main(["fleet", "keys", "signing", "--dir", str(tmp_path)]) == 2
    assert "model-signing.pem: not an Ed25519 private key" in capsys.readouterr().err
    assert (tmp_path / "model-signing.pem").read_text() == "not a key"
