"""JSON-lines windows with labels: round trip, validation, line numbers in errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.dataset import DatasetError, LabeledWindow, read_jsonl, write_jsonl
from models.types import Presence, WeightChange
from models.window import EventWindow, SlotContext
from tests.models.factory import make_records


def test_round_trip_keeps_windows_and_labels(tmp_path: Path) -> None:
    recs = make_records(60, seed=3)
    path = tmp_path / "d" / "windows.jsonl"
    assert write_jsonl(path, recs) == 60
    assert read_jsonl(path) == recs
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


def test_bad_record_names_file_and_line(tmp_path: Path) -> None:
    recs = make_records(3, seed=1)
    path = tmp_path / "w.jsonl"
    write_jsonl(path, recs)
    lines = path.read_text().splitlines()
    bad = json.loads(lines[1])
    bad["labels"]["interest"] = "dance"
    lines[1] = json.dumps(bad)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"w.jsonl:2: .*dance"):
        read_jsonl(path)


def test_stock_labels_must_match_the_changes() -> None:
    w = EventWindow("b", 1, 0, 1, 10, None, (), (WeightChange(0, 5, 0, 0, 1, 0.5),), {}, 0)
    with pytest.raises(ValueError, match="1 changes"):
        LabeledWindow(w, None, ("none", "removal"))
    with pytest.raises(ValueError, match="unknown stock"):
        LabeledWindow(w, None, ("theft",))
    assert LabeledWindow(w).stock_labels == (None,)
    assert not LabeledWindow(w).labelled


def test_newer_record_format_is_refused(tmp_path: Path) -> None:
    rec = make_records(1, seed=2)[0].to_dict() | {"v": 2}
    (tmp_path / "x.jsonl").write_text(json.dumps(rec) + "\n")
    with pytest.raises(DatasetError, match="format 2"):
        read_jsonl(tmp_path / "x.jsonl")


nums = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    dwell=nums,
    grams=nums,
    units=st.integers(-1000, 1000),
    since=st.none() | nums,
    interest=st.none() | st.sampled_from(["pass_by", "take"]),
    stock=st.sampled_from([None, "none", "misplaced"]),
)
def test_any_window_survives_json(
    tmp_path_factory, dwell, grams, units, since, interest, stock
) -> None:
    w = EventWindow(
        "b",
        7,
        0.0,
        1.0,
        3,
        Presence("bay", 0.0, 1.0, dwell, 0.5, 2),
        (Presence("slot-1", 0.1, 0.5, 0.4, 0.2, 1),),
        (WeightChange(1, grams, units, 0.2, 0.9, 0.7),),
        {1: SlotContext(1, 120.0, 2, since, None)},
        4,
    )
    rec = LabeledWindow(w, interest, (stock,))
    path = tmp_path_factory.mktemp("j") / "one.jsonl"
    write_jsonl(path, [rec])
    assert read_jsonl(path) == [rec]
