"""The OTA client's shadow run and latency watch against the real cloud's TUF repository.

The staged candidate is loaded from its slot and seated beside the model in use; the
decision worker's passes (played here through :meth:`ShadowSeat.beside`) score it;
the unit then reports per-head agreement, windows compared and the latency ratio and
switches, or refuses the version itself below the desired minimum agreement. The
model in use stays in use (its slot unchanged) throughout the shadow run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from cloud.settings import CloudSettings
from edge.events import WindowDecision
from edge.ota.state import OtaSettings
from models.window import EventWindow
from tests.edge.ota_support import OtaCloud, Unit, ota_cloud, unit
from tests.models.factory import make_records

SETTINGS = OtaSettings(watch_s=3600, retry_s=0.1, latency_windows=20)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[OtaCloud]:
    from tests.cloud.conftest import build_settings

    settings: CloudSettings = build_settings(
        database_url=f"sqlite:///{tmp_path / 'cloud.db'}", rate_per_s=0, db_pool_size=5
    )
    with ota_cloud(settings, tmp_path) as running:
        cloud = running
        cloud.publish(2)
        yield cloud


class Says:
    """A candidate that says the same for every window."""

    def __init__(self, interest: str, stock: str) -> None:
        self.d = WindowDecision(interest, 0.9, ((stock, 0.9),))

    def decide(self, windows: Sequence[EventWindow]) -> list[WindowDecision]:
        return [self.d for _ in windows]


def shadowing(cloud: OtaCloud, where: Path, need: float | None, load: object) -> Unit:
    u = unit(cloud, where, settings=SETTINGS, load=load)  # type: ignore[arg-type]
    u.worker.want(2, 10, need)
    u.worker.step()
    states = [r.state for r in u.reports]  # a download is reported again with its progress
    assert [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]] == [
        "downloading",
        "verifying",
        "shadow",
    ]
    assert u.worker.state.phase == "shadow" and u.worker.shadow.version == 2
    assert (u.slots.current_version(), u.slots.previous_version()) == (1, 2)  # 1 still decides
    return u


def windows(n: int) -> list[EventWindow]:
    return [r.window for r in make_records(n, seed=3)]


def test_a_candidate_in_shadow_is_scored_then_switched_to(cloud: OtaCloud, tmp_path: Path) -> None:
    loaded: list[Path] = []

    def load(path: Path) -> Says:
        loaded.append(path)
        return Says("browse", "none")

    u = shadowing(cloud, tmp_path / "unit", 0.5, load)
    assert loaded == [u.slots.slot("slot-b")]  # the staged slot, not the one in use
    ws = windows(12)
    mine = [WindowDecision("browse", 0.9, (("none", 0.9), ("removal", 0.9))) for _ in ws]
    for chunk in (slice(0, 6), slice(6, 12)):  # two decision passes of the model in use
        u.worker.shadow.beside(ws[chunk], mine[chunk], 0.01)
        u.worker.step()
    said = [r for r in u.reports if r.shadow_windows is not None]
    assert said[0].state == "shadow" and said[0].shadow_windows == 12
    assert said[0].shadow_heads == {"interest": 1.0, "stock": 0.5}
    assert said[0].shadow_agreement == 0.5 and said[0].latency_ratio is not None
    assert u.worker.shadow.version is None  # the candidate left the seat
    assert (u.slots.current_version(), u.slots.previous_version()) == (2, 1)
    assert u.worker.state.phase == "watching"


def test_too_little_agreement_in_shadow_is_refused_by_the_unit(
    cloud: OtaCloud, tmp_path: Path
) -> None:
    u = shadowing(cloud, tmp_path / "unit", 0.9, lambda path: Says("pass_by", "restock"))
    ws = windows(10)
    mine = [WindowDecision("browse", 0.9, (("removal", 0.9),)) for _ in ws]
    u.worker.shadow.beside(ws, mine, 0.01)
    u.worker.step()
    last = u.last()
    assert last.state == "failed" and last.version == 2
    assert last.reason.startswith("shadow agreement 0.00 below 0.90"), last.reason
    assert last.shadow_heads == {"interest": 0.0, "stock": 0.0} and last.shadow_windows == 10
    assert u.slots.current_version() == 1 and u.worker.shadow.version is None
    u.worker.want(2, 10, 0.9)
    u.worker.step()
    assert u.last() == last  # not tried again while it is desired


def test_a_candidate_that_does_not_load_in_shadow_is_refused(
    cloud: OtaCloud, tmp_path: Path
) -> None:
    def broken(path: Path) -> Says:
        raise OSError(f"{path}: model.onnx unreadable")

    u = unit(cloud, tmp_path / "unit", settings=SETTINGS, load=broken)
    u.worker.want(2, 10, None)
    u.worker.step()
    assert u.last().state == "failed" and "in shadow: did not load" in u.last().reason
    assert u.slots.current_version() == 1


def test_a_restart_in_shadow_shadows_again_with_the_old_model_in_use(
    cloud: OtaCloud, tmp_path: Path
) -> None:
    where = tmp_path / "unit"
    shadowing(cloud, where, None, lambda path: Says("pass_by", "none"))
    again = unit(
        cloud, where, installed=None, settings=SETTINGS, load=lambda p: Says("pass_by", "none")
    )
    assert again.worker.state.phase == "shadow" and again.worker.shadow.version == 2
    assert again.slots.current_version() == 1


def test_latency_far_above_the_previous_models_rolls_back(cloud: OtaCloud, tmp_path: Path) -> None:
    u = unit(cloud, tmp_path / "unit", settings=SETTINGS)
    u.worker.latency.record(1, 0.002 * 40, 40)  # v1 decided 40 windows at 2 ms each
    u.worker.want(2)
    u.worker.step()
    assert u.worker.state.phase == "watching" and u.slots.current_version() == 2
    u.worker.latency.record(2, 0.004 * 20, 20)  # 2x: tolerated
    u.worker.step()
    assert u.worker.state.phase == "watching"
    u.worker.latency.record(2, 0.05 * 20, 20)  # the last 20 windows at 50 ms: 25x
    u.worker.step()
    assert u.last().state == "rolled_back" and u.last().reason.startswith("latency: median")
    assert u.slots.current_version() == 1
