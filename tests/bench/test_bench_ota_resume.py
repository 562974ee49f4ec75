"""Smoke test of the cut-download benchmark at a tiny size: every mode gets the archive (no timing)."""

from __future__ import annotations

import pytest

from tests.bench import bench_ota_resume


def test_bench_ota_resume_fetches_the_archive_in_every_mode(
    capsys: pytest.CaptureFixture[str],
) -> None:
    no_cut, restart, resume, reboot, paced = bench_ota_resume.run(32)
    assert "x archive" in capsys.readouterr().out
    assert no_cut.attempts == 1 and resume.attempts == 1 and paced.attempts == 1
    assert restart.attempts == bench_ota_resume.CUTS + 1  # each cut failed the download
    assert reboot.attempts == bench_ota_resume.CUTS + 1  # each cut ended the process
    assert resume.body_bytes < 2 * resume.archive < restart.body_bytes
    assert reboot.body_bytes == reboot.archive  # each try went on from the kept bytes
