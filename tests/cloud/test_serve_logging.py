"""``shelfsense cloud serve --workers 2`` tells the operator when a worker dies and is replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import cast

import psutil
import pytest

from tests.support.mosquitto import free_port, wait_for_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def workers(pid: int) -> set[int]:
    """The uvicorn worker processes under ``pid`` (multiprocessing children, not its tracker)."""
    out = set()
    for child in psutil.Process(pid).children():
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in cmd:
            out.add(child.pid)
    return out


@pytest.mark.slow
def test_serve_logs_startup_and_a_worker_replaced(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "shelfsense", "cloud", "serve", "--database-url",
           f"sqlite:///{tmp_path / 'c.db'}", "--port", str(port), "--workers", "2"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        lines.extend(iter(proc.stderr.readline, ""))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for_port("127.0.0.1", port, cast("subprocess.Popen[bytes]", proc), timeout=60)
        wait_until(lambda: len(workers(proc.pid)) == 2, timeout=60)
        assert any("serving on" in line and "ingest slots" in line for line in lines)
        victim = min(workers(proc.pid))
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: any(f"[{victim}] died" in line for line in lines), timeout=60)
        wait_until(
            lambda: len(workers(proc.pid)) == 2 and victim not in workers(proc.pid), timeout=60
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=10)
