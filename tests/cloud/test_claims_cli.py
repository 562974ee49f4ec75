"""``fleet claim-codes create|list|revoke`` on a real SQLite store: what the operator sees."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from cloud.store import open_store
from models.claim_code import normalize
from shelfsense.cli import main
from tests.cloud.support import register_unit

CODE_LINE = re.compile(r"^([0-9A-Z]{5}-[0-9A-Z]{5})  store-9/bay-1  id ([0-9a-f]+)  expires ")


def test_codes_are_made_with_qr_codes_listed_without_the_code_and_revoked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    store = open_store(url, pool_size=2)
    register_unit(store, "seed", "store-9", "bay-1")
    store.dispose()
    db = ["--database-url", url]
    qr = tmp_path / "qr"
    args = ["fleet", "claim-codes", "create", "--store", "store-9", "--bay", "bay-1"]
    assert main([*args, "--count", "2", "--expires", "1d", "--qr-dir", str(qr), *db]) == 0
    made = capsys.readouterr().out
    found = [m.groups() for m in map(CODE_LINE.match, made.splitlines()) if m]
    assert len(found) == 2 and "2 code(s); each is shown only now" in made
    assert "█" in made  # drawn in the terminal too
    for code, _ in found:
        normalize(code)  # a valid code: its check character fits
        png = qr / f"{code}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert stat.S_IMODE(png.stat().st_mode) == 0o600

    assert main(["fleet", "claim-codes", "revoke", found[0][1], *db]) == 0
    assert f"revoked claim code {found[0][1]}" in capsys.readouterr().out
    assert main(["fleet", "claim-codes", "list", *db]) == 0
    listed = capsys.readouterr().out
    states = {line.split()[0]: line.split()[3] for line in listed.splitlines()[1:-1]}
    assert states == {found[0][1]: "revoked", found[1][1]: "open"}
    assert all(code not in listed for code, _ in found), "the list never shows a code"
    assert "refused claims: none" in listed

    bad = ["fleet", "claim-codes", "create", "--store", "store-9", "--bay", "bay-1"]
    with pytest.raises(SystemExit):
        main([*bad, "--expires", "soon", *db])
    assert "give a number and s, m, h or d" in capsys.readouterr().err


def test_the_qr_png_holds_the_claim_payload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    store = open_store(url, pool_size=2)
    register_unit(store, "seed", "store-9", "bay-1")
    store.dispose()
    args = ["fleet", "claim-codes", "create", "--store", "store-9", "--bay", "bay-1"]
    assert main([*args, "--qr-dir", str(tmp_path), "--no-terminal-qr", "--database-url", url]) == 0
    code = capsys.readouterr().out.split()[0]
    decoded = zxingcpp.read_barcodes(Image.open(tmp_path / f"{code}.png"))
    assert [d.text for d in decoded] == [f"shelfsense-claim:{code}"]
