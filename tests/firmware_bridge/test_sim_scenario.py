"""Scenario files: shipped ones load, bad ones are refused naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_bridge.errors import BridgeError
from firmware_bridge.sim.scenario import ScenarioError, load_scenario, shipped_scenarios
from firmware_bridge.sim.store import scenario_toml

QUIET_HEAD = """
name = "tiny"
sps = 80
[[slots]]
slot = 0
channel = 0
sku = "A"
unit_grams = 100.0
capacity = 10
initial = 5
"""


def test_shipped_scenarios_load_and_cover_the_required_set() -> None:
    names = shipped_scenarios()
    assert {"quiet", "busy", "noisy", "faulty", "heldout"} <= set(names)
    for name in names:
        sc = load_scenario(name)
        grams = [s.unit_grams for s in sc.slots]
        assert min(grams) <= 60 and max(grams) >= 900, name  # varied items
    noisy = load_scenario("noisy")
    assert noisy.hx711.noise_grams == 2.0
    assert noisy.hx711.vibration_grams > 0 and noisy.hx711.drift_grams > 0
    faulty = load_scenario("faulty").faults
    assert faulty.stuck_per_hour > 0 and faulty.disconnect_per_hour > 0
    assert faulty.offset_jump_per_hour > 0


def test_heldout_differs_from_the_training_scenarios() -> None:
    held = load_scenario("heldout")
    skus = {s.sku for s in held.slots}
    for name in ("quiet", "busy", "noisy"):
        other = load_scenario(name)
        assert not skus & {s.sku for s in other.slots}
        assert held.hx711.noise_grams != other.hx711.noise_grams
        assert held.traffic.arrivals_per_hour != other.traffic.arrivals_per_hour


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(QUIET_HEAD + "\n[hx711]\nnoise_gram = 2.0\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(p)
    assert str(p) in str(err.value) and "hx711.noise_gram" in str(err.value)
    assert isinstance(err.value, BridgeError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("\n[traffic]\nintent_mix = { shoplift = 1.0 }\n", "traffic"),
        ("\n[hx711]\nnoise_grams = -1.0\n", "hx711.noise_grams"),
        (
            "\n[[slots]]\nslot = 0\nchannel = 1\nsku = 'B'\nunit_grams = 5.0\ncapacity = 1\ninitial = 0\n",
            "slot",
        ),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, extra: str, key: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(QUIET_HEAD + extra)
    with pytest.raises(ScenarioError, match=key):
        load_scenario(p)


def test_initial_above_capacity_and_saturating_layout_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "over.toml"
    p.write_text(QUIET_HEAD.replace("initial = 5", "initial = 11"))
    with pytest.raises(ScenarioError, match=r"slots\.0"):
        load_scenario(p)
    p.write_text(
        QUIET_HEAD.replace("unit_grams = 100.0", "unit_grams = 9000.0")
        + "\n[hx711]\ncounts_per_gram = 1000.0\n"
    )
    with pytest.raises(ScenarioError, match="saturate"):
        load_scenario(p)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no scenario named"):
        load_scenario("no-such-scenario")
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "absent.toml")
    p = tmp_path / "broken.toml"
    p.write_text("name = ")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(p)


@pytest.mark.parametrize("name", ["busy", "heldout"])
def test_scenario_written_as_toml_reads_back_equal(tmp_path: Path, name: str) -> None:
    sc = load_scenario(name)
    p = tmp_path / "copy.toml"
    p.write_text(scenario_toml(sc))
    assert load_scenario(p) == sc
