"""``shelfsense cloud serve`` says where it listens, and logs each request with --access-log."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.support.mosquitto import free_port
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def test_serve_logs_where_it_listens_and_each_request(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "shelfsense", "cloud", "serve", "--port", str(port)]
    cmd += ["--database-url", f"sqlite:///{tmp_path / 'c.db'}", "--access-log"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []

    def read(stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    readers = [
        threading.Thread(target=read, args=(s,), daemon=True) for s in (proc.stderr, proc.stdout)
    ]
    for t in readers:
        t.start()
    try:
        wait_until(lambda: any("listening on" in line for line in lines) or proc.poll() is not None)
        said = next(line for line in lines if "listening on" in line)
        assert f"http://127.0.0.1:{port}" in said and "INFO" in said and "sqlite" in said

        def answered() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answered)
        wait_until(lambda: any("GET /v1/health" in line and "200" in line for line in lines))
    finally:
        proc.terminate()
        proc.wait(20)
