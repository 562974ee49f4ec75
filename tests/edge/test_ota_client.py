"""The unit's OTA client against the real cloud's TUF repository, and TUF's attacks on it.

Each attack is refused with a reason the unit reports as ``failed``; the model in use
(version 1 in its slot) stays in use and whole. The happy path switches to version 2
and keeps version 1 as the previous slot. After a switch, inference errors, a model
that does not load and a crash loop each put version 1 back and report ``rolled_back``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.tuf_repo import TufRepository, init_repository
from edge.ota.slots import Slots
from edge.ota.state import OtaSettings
from models.bundle import verify_bundle
from tests.edge.ota_agent_child import SaysNone
from tests.edge.ota_support import OtaCloud, Unit, sqlite_ota_cloud, unit
from tests.support.waiting import wait_until


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[OtaCloud]:
    with sqlite_ota_cloud(tmp_path) as running:
        yield running


def update(u: Unit, version: int) -> None:
    """Ask for ``version`` and step the worker until it says where it ended."""
    u.worker.want(version)

    def settled() -> bool:
        u.worker.step()
        return bool(u.reports) and u.last().state in ("active", "failed", "rolled_back")

    wait_until(settled, timeout=30)


def still_on_version_1(u: Unit, cloud: OtaCloud) -> None:
    assert u.slots.current_version() == 1
    assert verify_bundle(u.slots.current_link, trusted_keys=[cloud.key.public_key()]).version == 1


def test_fetch_verify_switch_and_keep_the_previous(cloud: OtaCloud, tmp_path: Path) -> None:
    cloud.publish(2)
    u = unit(cloud, tmp_path / "unit")
    update(u, 2)
    states = [r.state for r in u.reports]
    assert [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]] == [
        "downloading",
        "verifying",
        "staged",
        "active",
    ]
    progress = [r.progress for r in u.reports if r.state == "downloading"]
    assert progress[0] is None and progress[-1] == 1.0  # then the share received
    assert progress[1:] == sorted(progress[1:])
    assert (u.last().version, u.last().previous_version) == (2, 1)
    assert (u.slots.current_version(), u.slots.previous_version()) == (2, 1)
    assert json.loads((tmp_path / "unit" / "ota.json").read_text())["current"] == 2


def refused(u: Unit, cloud: OtaCloud, version: int, why: str) -> None:
    update(u, version)
    assert u.last().state == "failed" and u.last().version == version
    assert why in u.last().reason, u.last().reason
    still_on_version_1(u, cloud)
    reports = len(u.reports)
    u.worker.want(version)
    u.worker.step()
    assert len(u.reports) == reports  # not tried again while it is the desired version


def test_tampered_target(cloud: OtaCloud, tmp_path: Path) -> None:
    stored = cloud.stored_target(cloud.publish(2))
    data = bytearray(stored.read_bytes())
    data[600] ^= 0xFF  # same length, other bytes
    stored.write_bytes(bytes(data))
    refused(unit(cloud, tmp_path / "unit"), cloud, 2, "length/hash mismatch")


def test_target_longer_than_signed(cloud: OtaCloud, tmp_path: Path) -> None:
    stored = cloud.stored_target(cloud.publish(2))
    stored.write_bytes(stored.read_bytes() + b"\0" * 4096)  # endless data, cut at the length
    refused(unit(cloud, tmp_path / "unit"), cloud, 2, "download longer than its signed length")


def test_frozen_timestamp(cloud: OtaCloud, tmp_path: Path) -> None:
    cloud.publish(2)
    frozen = TufRepository(cloud.repo.path, clock=lambda: datetime.now(UTC) - timedelta(days=3))
    frozen.refresh(force=True)  # signed three days ago: expired for two
    refused(unit(cloud, tmp_path / "unit"), cloud, 2, "expired")


def test_metadata_rolled_back(cloud: OtaCloud, tmp_path: Path) -> None:
    cloud.publish(2)
    old_timestamp = (cloud.repo.metadata_dir / "timestamp.json").read_bytes()
    cloud.publish(3)
    u = unit(cloud, tmp_path / "unit")
    update(u, 3)  # the unit has now seen the newer timestamp
    assert u.slots.current_version() == 3
    cloud.publish(4)
    (cloud.repo.metadata_dir / "timestamp.json").write_bytes(old_timestamp)  # a replayed mirror
    update(u, 4)
    assert u.last().state == "failed" and "older than expected" in u.last().reason
    assert u.slots.current_version() == 3


def test_untrusted_root(cloud: OtaCloud, tmp_path: Path) -> None:
    cloud.publish(2)
    other = TufRepository(tmp_path / "other-tuf")
    init_repository(other, tmp_path / "other-keys")
    u = unit(cloud, tmp_path / "unit", root=other.root_bytes(1))
    refused(u, cloud, 2, "not signed by a trusted key")


def test_version_not_published(cloud: OtaCloud, tmp_path: Path) -> None:
    cloud.publish(2)
    refused(unit(cloud, tmp_path / "unit"), cloud, 9, "version 9 is not in the repository")


def test_bundle_needing_a_newer_agent(cloud: OtaCloud, tmp_path: Path) -> None:
    cloud.publish(2, min_agent_version="9.0.0")
    refused(unit(cloud, tmp_path / "unit"), cloud, 2, "needs agent 9.0.0")


def test_cloud_down_is_retried_not_refused(cloud: OtaCloud, tmp_path: Path) -> None:
    cloud.publish(2)
    u = unit(cloud, tmp_path / "unit")
    url = u.worker.fetcher.base_url
    u.worker.fetcher.base_url = "http://127.0.0.1:9"  # nothing listens: a cut
    u.worker.want(2)
    u.worker.step()
    assert u.last().state == "downloading" and "unreachable" in u.last().reason, u.last().reason
    still_on_version_1(u, cloud)
    u.worker.fetcher.base_url = url

    def active() -> bool:
        u.worker.step()
        return u.last().state == "active"

    wait_until(active, timeout=30)
    assert u.slots.current_version() == 2


def switched_and_watching(cloud: OtaCloud, where: Path) -> Unit:
    cloud.publish(2)
    u = unit(cloud, where, settings=OtaSettings(watch_s=3600, max_errors=3, max_boots=3))
    u.worker.want(2)
    u.worker.step()
    assert u.last().state == "staged" and u.worker.state.phase == "watching"
    assert (u.slots.current_version(), u.slots.previous_version()) == (2, 1)
    return u


def test_inference_errors_after_the_switch_roll_back(cloud: OtaCloud, tmp_path: Path) -> None:
    u = switched_and_watching(cloud, tmp_path / "unit")
    u.health.count("decision_errors", 3)  # what the decision worker counts
    u.worker.step()
    assert u.last().state == "rolled_back" and u.last().version == 2
    assert u.last().reason == "3 inference errors after the switch"
    still_on_version_1(u, cloud)
    assert u.slots.previous_version() == 2  # kept, but not tried again while desired
    u.worker.want(2)
    u.worker.step()
    assert u.slots.current_version() == 1


def test_a_model_that_does_not_load_rolls_back(cloud: OtaCloud, tmp_path: Path) -> None:
    u = switched_and_watching(cloud, tmp_path / "unit")
    u.health.alarm("model_refused", "golden batch 1 interest: outputs differ")
    u.health.count("model_load_failures")
    u.worker.step()
    assert u.last().state == "rolled_back"
    assert "did not load: golden batch 1 interest" in u.last().reason
    still_on_version_1(u, cloud)


def test_a_crash_loop_after_the_switch_rolls_back(cloud: OtaCloud, tmp_path: Path) -> None:
    switched_and_watching(cloud, tmp_path / "unit")
    for boot in (1, 2, 3):  # the agent restarts (its state file and slots stay)
        again = unit(
            cloud,
            tmp_path / "unit",
            installed=None,
            settings=OtaSettings(watch_s=3600, max_errors=3, max_boots=3),
        )
        if boot < 3:
            assert again.worker.state.phase == "watching" and again.reports == []
    assert again.last().state == "rolled_back"
    assert again.last().reason == "crash loop: 3 restarts while watching"
    still_on_version_1(again, cloud)


def test_a_collapsed_model_rolls_back(cloud: OtaCloud, tmp_path: Path) -> None:
    u = switched_and_watching(cloud, tmp_path / "unit")

    def event(version: int, label: str) -> dict[str, object]:
        return {"kind": "stock", "label": label, "decided_by": "model", "model_version": version}

    u.worker.saw([event(1, ["removal", "return", "none"][i % 3]) for i in range(60)])
    u.worker.saw([event(2, "none") for _ in range(59)] + [event(2, "removal")])
    u.worker.step()
    assert u.last().state == "rolled_back"
    assert u.last().reason == "decision distribution collapsed: 98% none (stock, 60 windows)"
    still_on_version_1(u, cloud)


@pytest.mark.parametrize("state", ["downloading", "verifying", "shadow", "staged", "watching"])
def test_kill_9_in_every_ota_state_then_a_restart_finishes(
    cloud: OtaCloud, tmp_path: Path, state: str
) -> None:
    """The client is killed right after it says ``state`` (in the middle of the next step);
    the unit then runs v1 or v2 whole, and the restarted client ends on v2, v1 kept."""
    import os
    import signal
    import subprocess
    import sys

    from models.bundle import public_key_pem

    cloud.publish(2)
    where = tmp_path / "unit"
    first = unit(cloud, where)  # v1 installed, root and metadata folder in place
    assert first.slots.current_version() == 1
    (where / "tuf-root.json").write_bytes(cloud.repo.root_bytes(1))
    pem = tmp_path / "trusted.pem"
    pem.write_bytes(public_key_pem(cloud.key))
    root = Path(__file__).resolve().parents[2]
    args = ["-m", "tests.edge.ota_agent_child", cloud.live.url, str(where), str(pem), "2"]
    if state == "shadow":
        args.append("shadow")
    child = subprocess.Popen(
        [sys.executable, *args],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    said = []
    for line in child.stdout:
        said.append(line.strip())
        if said[-1] == state:
            break
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    child.stdout.close()
    assert said[-1] == state, said
    slots = Slots.open(where / "models" / "current")
    running = slots.current_version()
    assert running in (1, 2)  # never none, never a mix:
    assert (
        verify_bundle(slots.current_link, trusted_keys=[cloud.key.public_key()]).version == running
    )
    again = unit(  # the agent restarts; a shadow run ends by time with nothing compared
        cloud,
        where,
        installed=None,
        settings=OtaSettings(watch_s=0, retry_s=0.1, shadow_max_s=0.5),
        load=lambda path: SaysNone(),
    )

    def active() -> bool:
        again.worker.step()
        return bool(again.reports) and again.last().state == "active"

    wait_until(active, 30)
    assert (slots.current_version(), slots.previous_version()) == (2, 1)


def test_a_stalled_mirror_times_out_and_is_retried(cloud: OtaCloud, tmp_path: Path) -> None:
    import socket

    cloud.publish(2)
    u = unit(cloud, tmp_path / "unit")
    with socket.socket() as stall:  # accepts connections (backlog), never answers
        stall.bind(("127.0.0.1", 0))
        stall.listen(8)
        url = u.worker.fetcher.base_url
        u.worker.fetcher.base_url = f"http://127.0.0.1:{stall.getsockname()[1]}"
        u.worker.fetcher.timeout_s = 1
        u.worker.want(2)
        u.worker.step()
    assert u.last().state == "downloading" and "stalled" in u.last().reason, u.last().reason
    still_on_version_1(u, cloud)
    u.worker.fetcher.base_url = url

    def active() -> bool:
        u.worker.step()
        return u.last().state == "active"

    wait_until(active, timeout=30)


def test_mix_and_match_targets_is_refused(cloud: OtaCloud, tmp_path: Path) -> None:
    cloud.publish(2)
    cloud.publish(3)
    meta = cloud.repo.metadata_dir
    (meta / "3.targets.json").write_bytes((meta / "2.targets.json").read_bytes())
    refused(unit(cloud, tmp_path / "unit"), cloud, 3, "older than expected")
