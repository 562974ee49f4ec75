"""Logging: journald priorities under systemd, INFO there by default, JSON lines on request."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from models import logs
from tests.support.mosquitto import free_port
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def record(level: int, msg: str, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("bad value")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("cloud.x", level, __file__, 1, msg, None, info)


def test_levels_map_to_syslog_priorities() -> None:
    got = [logs.priority(x) for x in (5, 10, 20, 30, 40, 50)]
    assert got == [7, 7, 6, 4, 3, 2]


def test_journald_is_recognised_by_the_stream_it_names(tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as f:
        st = os.fstat(f.fileno())
        assert logs.under_journald({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, f.fileno())
        assert not logs.under_journald(
            {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, f.fileno()
        )
        assert not logs.under_journald({"JOURNAL_STREAM": "x:y"}, f.fileno())
        assert not logs.under_journald({}, f.fileno())


def test_under_journald_info_is_the_default_level_and_lines_carry_priorities() -> None:
    assert logs.level_for(0, journald=True, env={}) == logging.INFO
    assert logs.level_for(0, journald=False, env={}) == logging.WARNING
    assert logs.level_for(2, journald=False, env={}) == logging.DEBUG
    assert logs.level_for(0, journald=True, env={"SHELFSENSE_LOG_LEVEL": "error"}) == logging.ERROR
    fmt = logs.LogFormatter(journald=True)
    assert fmt.format(record(logging.ERROR, "boom")) == "<3>ERROR cloud.x: boom"
    lines = fmt.format(record(logging.ERROR, "failed", exc=True)).splitlines()
    assert len(lines) > 2 and all(ln.startswith("<3>") for ln in lines)  # a traceback too
    assert fmt.format(record(logging.INFO, "up")).startswith("<6>INFO")


def test_json_lines_hold_one_record_each() -> None:
    line = logs.LogFormatter(json_lines=True).format(record(logging.WARNING, "a\nb", exc=True))
    assert "\n" not in line
    doc = json.loads(line)
    assert (doc["level"], doc["logger"], doc["message"]) == ("WARNING", "cloud.x", "a\nb")
    assert "ValueError: bad value" in doc["exception"]
    assert logs.json_wanted(env={"SHELFSENSE_LOG_JSON": "1"}) and not logs.json_wanted(env={})


def test_cloud_serve_under_journald_logs_info_with_priorities_as_json(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "shelfsense", "--log-json", "cloud", "serve", "--port", str(port),
           "--database-url", f"sqlite:///{tmp_path / 'c.db'}"]  # fmt: skip
    err = tmp_path / "stderr"
    with open(err, "w") as stream:
        st = os.fstat(stream.fileno())
        env = {**os.environ, "PYTHONPATH": str(REPO), "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        env.pop("SHELFSENSE_LOG_LEVEL", None)
        proc = subprocess.Popen(cmd, stderr=stream, stdout=subprocess.DEVNULL, env=env)
    try:
        wait_until(lambda: "listening on" in err.read_text(), timeout=60)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = [ln for ln in err.read_text().splitlines() if ln.strip()]
    assert lines and all(ln.startswith(("<6>", "<4>", "<3>")) for ln in lines), lines
    docs = [json.loads(ln[3:]) for ln in lines]
    listening = next(d for d in docs if "listening on" in d["message"])
    assert listening["level"] == "INFO" and listening["logger"] == "cloud"
    assert f"127.0.0.1:{port}" in listening["message"] or f":{port}" in listening["message"]
