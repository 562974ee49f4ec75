"""`shelfsense edge …` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfsense.cli import main


def write_unit(tmp_path: Path, extra: str = "", *, identity: bool = True) -> Path:
    cfg = tmp_path / "unit.toml"
    cfg.write_text(f'[unit]\ndevice_id = "unit-c"\ndata_dir = "{tmp_path}"\n{extra}')
    if identity:
        (tmp_path / "identity.json").write_text(json.dumps({"device_id": "unit-c", "api_key": "k"}))
    return cfg


def test_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_unit(tmp_path, '[sync]\nmode = "both"\nbatch_size = 50\n')
    assert main(["edge", "run", "--config", str(cfg), "--check-config"]) == 0
    out = capsys.readouterr().out
    assert "config OK" in out and "unit-c" in out and "both" in out


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("[sync]\nbatch_size = 0\n", "sync.batch_size"),
        ('[buffer]\non_full = "panic"\n', "buffer.on_full"),
        ("[health]\nbogus = 1\n", "health.bogus"),
        ("[sync]\nbackoff_initial_s = 10\nbackoff_max_s = 1\n", "sync"),
    ],
)
def test_check_config_names_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, key: str
) -> None:
    cfg = write_unit(tmp_path, extra)
    assert main(["edge", "run", "--config", str(cfg), "--check-config"]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and key in err


def test_check_config_wants_a_matching_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_unit(tmp_path, identity=False)
    assert main(["edge", "run", "--config", str(cfg), "--check-config"]) == 2
    assert "identity" in capsys.readouterr().err
    (tmp_path / "identity.json").write_text(json.dumps({"device_id": "another"}))
    assert main(["edge", "run", "--config", str(cfg), "--check-config"]) == 2
    assert "another" in capsys.readouterr().err
    off = write_unit(tmp_path, '[sync]\nmode = "off"\n', identity=False)
    assert main(["edge", "run", "--config", str(off), "--check-config"]) == 0


def test_status_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.buffer import Buffer
    from tests.edge.events_support import event_fields

    cfg = write_unit(tmp_path)
    buf = Buffer(tmp_path / "buffer.db", device_id="unit-c")
    buf.append_many([event_fields(i) for i in range(4)])
    buf.close()
    assert main(["edge", "status", "--config", str(cfg)]) == 0
    table = capsys.readouterr().out
    assert "buffer depth" in table and "4" in table
    assert main(["edge", "status", "--config", str(cfg), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["buffer_depth"] == 4 and data["device_id"] == "unit-c"


def test_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["edge", "fly"])
    assert exc.value.code == 2


def test_install_model_checks_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["edge", "install-model", str(tmp_path / "nope")]) == 2
    assert "not a model bundle" in capsys.readouterr().err
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"version": "x"}))
    assert main(["edge", "install-model", str(bundle)]) == 2
    (bundle / "manifest.json").write_text(json.dumps({"version": 3, "format": 1}))
    assert main(["edge", "install-model", str(bundle)]) == 0
    assert "version 3" in capsys.readouterr().out


def test_check_config_says_which_slots_want_calibration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.signals.calibration import CalibrationStore, ChannelCalibration

    slots = "".join(
        f'[[slots]]\nslot = {i}\nchannel = {i}\nsku = "S{i}"\nunit_grams = 100\n' for i in range(3)
    )
    cfg = write_unit(tmp_path, '[loadcells]\nsource = "serial"\n' + slots)
    assert main(["edge", "run", "--config", str(cfg), "--check-config"]) == 2
    err = capsys.readouterr().err
    assert "slot 0 (channel 0), slot 1 (channel 1), slot 2 (channel 2)" in err
    assert "provision calibrate" in err and "config OK" not in err
    CalibrationStore(tmp_path / "calibration.json").save(
        {0: ChannelCalibration(0, 100.0, 250.0), 2: ChannelCalibration(2, 50.0, 240.0)}
    )
    assert main(["edge", "run", "--config", str(cfg), "--check-config"]) == 2
    err = capsys.readouterr().err
    assert "none for slot 1 (channel 1)" in err and "slot 0" not in err
    CalibrationStore(tmp_path / "calibration.json").save(
        {c: ChannelCalibration(c, 100.0, 250.0) for c in range(3)}
    )
    assert main(["edge", "run", "--config", str(cfg), "--check-config"]) == 0
    assert "config OK" in capsys.readouterr().out


def test_check_config_says_how_to_get_an_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_unit(tmp_path, identity=False)
    assert main(["edge", "run", "--config", str(cfg), "--check-config"]) == 2
    assert "provision claim" in capsys.readouterr().err


def test_the_config_comes_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_unit(tmp_path)
    monkeypatch.setenv("SHELFSENSE_CONFIG", str(cfg))
    assert main(["edge", "run", "--check-config"]) == 0
    assert "unit-c" in capsys.readouterr().out
