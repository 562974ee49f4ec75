"""The unit config: defaults, validation naming file and key, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.config import apply_env, load_config, parse_config
from edge.errors import ConfigError

GOOD = """
[unit]
device_id = "unit-0007"
store = "store-12"
bay = "bay-3"

[[slots]]
slot = 0
channel = 0
sku = "SKU-1"
unit_grams = 330.0

[loadcells]
source = "hx711"
sps = 10

[[loadcells.hx711]]
channel = 0
dout = 5
pd_sck = 6
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "unit.toml"
    p.write_text(text)
    return p


def test_every_key_has_a_default() -> None:
    cfg = load_config(None, env={})
    assert cfg.loadcells.source == "sim"
    assert cfg.slots == []


def test_a_good_file_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={})
    assert cfg.unit.device_id == "unit-0007"
    assert cfg.loadcells.hx711[0].dout == 5
    assert cfg.slots[0].unit_grams == 330.0


def test_unknown_key_is_refused_naming_key_and_file(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace('bay = "bay-3"', 'bay = "bay-3"\ncolour = "red"'))
    with pytest.raises(ConfigError) as err:
        load_config(p, env={})
    assert str(p) in str(err.value)
    assert "unit.colour" in str(err.value)


def test_negative_unit_weight_is_refused(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace("unit_grams = 330.0", "unit_grams = -330.0"))
    with pytest.raises(ConfigError, match=r"slots\.0\.unit_grams"):
        load_config(p, env={})


def test_missing_pin_is_refused(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD.replace("pd_sck = 6\n", ""))
    with pytest.raises(ConfigError, match=r"loadcells\.hx711\.0\.pd_sck"):
        load_config(p, env={})


def test_gpio_source_without_boards_is_refused(tmp_path: Path) -> None:
    text = GOOD[: GOOD.index("[[loadcells.hx711]]")]
    with pytest.raises(ConfigError, match="hx711"):
        load_config(write(tmp_path, text), env={})


def test_two_slots_on_one_channel_are_refused() -> None:
    slot = {"channel": 1, "sku": "a", "unit_grams": 10}
    with pytest.raises(ConfigError, match="channel 1"):
        parse_config({"slots": [{"slot": 0, **slot}, {"slot": 1, **slot}]}, source="x.toml")


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[unit\n"), env={})
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml", env={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    env = {"SHELFSENSE__UNIT__STORE": "store-99", "SHELFSENSE__LOADCELLS__SPS": "80"}
    cfg = load_config(write(tmp_path, GOOD), env=env)
    assert cfg.unit.store == "store-99"
    assert cfg.loadcells.sps == 80


def test_a_bad_override_is_refused_like_a_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"loadcells\.sps"):
        load_config(write(tmp_path, GOOD), env={"SHELFSENSE__LOADCELLS__SPS": "33"})


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.integers() | st.text(max_size=5)))
def test_arbitrary_top_level_keys_never_crash(data: dict[str, object]) -> None:
    try:
        parse_config(data, source="fuzz.toml")
    except ConfigError as err:
        assert "fuzz.toml" in str(err)


def test_apply_env_builds_nested_sections() -> None:
    out = apply_env({}, {"SHELFSENSE__A__B__C": "true", "OTHER": "x"})
    assert out == {"a": {"b": {"c": True}}}
