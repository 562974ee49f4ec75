"""A person at a terminal: a command on a real pseudo-terminal, prompts read, answers typed."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.waiting import wait_until


class Terminal:
    """Runs ``python -m shelfsense ARGS`` with a pty as its stdin, stdout and stderr."""

    def __init__(self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None):
        master, slave = os.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shelfsense", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            close_fds=True,
        )
        os.close(slave)
        self.screen = ""
        self._read_to = 0

    def _pump(self) -> None:
        while select.select([self.master], [], [], 0)[0]:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # the child closed its end
                return
            if not data:
                return
            self.screen += data.decode("utf-8", "replace")

    def expect(self, text: str, timeout: float = 30.0) -> str:
        """Wait until ``text`` appears after what was already read; return the new output."""

        def seen() -> bool:
            self._pump()
            return text in self.screen[self._read_to :]

        try:
            wait_until(seen, timeout)
        except AssertionError:
            raise AssertionError(f"{text!r} not shown; screen:\n{self.screen[-3000:]}") from None
        start = self._read_to
        self._read_to = self.screen.index(text, self._read_to) + len(text)
        return self.screen[start : self._read_to]

    def type(self, line: str) -> None:
        """Type ``line`` and press Enter."""
        os.write(self.master, line.encode() + b"\r")

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the command to end; its exit status."""

        def ended() -> bool:
            self._pump()
            return self.proc.poll() is not None

        wait_until(ended, timeout)
        self._pump()
        return int(self.proc.returncode)

    def close(self) -> None:
        """End the command if it still runs, and close the pty."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
