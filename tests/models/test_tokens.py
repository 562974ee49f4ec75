"""The shelf-event language: closed vocabulary, bins, [UNK], sequence layout."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.tokens import CHG_ID, CLS, SEP, UNK, ShelfTokenizer, pad_batch, sku_match
from models.types import Presence, WeightChange
from models.window import EventWindow, SlotContext

TOK = ShelfTokenizer.default()


def _window(
    changes: tuple[WeightChange, ...] = (), presence: Presence | None = None, **kw: object
) -> EventWindow:
    slots = {c.slot: SlotContext(c.slot, 120.0) for c in changes}
    return EventWindow("bay-1", 1, 0.0, 10.0, 14, presence, (), changes, slots, **kw)  # type: ignore[arg-type]


def test_layout_starts_with_cls_ends_with_sep_and_marks_changes() -> None:
    p = Presence("bay", 0.0, 8.0, 8.0, 0.4, 1)
    changes = (WeightChange(1, -240.0, -2, 2.0, 3.0, 0.9), WeightChange(1, 120.0, 1, 5.0, 6.0, 0.9))
    enc = TOK.encode(_window(changes, p))
    assert enc.ids[0] == CLS and enc.ids[-1] == SEP
    assert len(enc.change_positions) == 2
    assert all(enc.ids[i] == CHG_ID for i in enc.change_positions)
    assert UNK not in enc.ids


def test_signed_grams_and_units_get_distinct_tokens() -> None:
    down = TOK.tokens_of(_window((WeightChange(0, -240.0, -2, 0, 1, 0.9),)))[0]
    up = TOK.tokens_of(_window((WeightChange(0, 240.0, 2, 0, 1, 0.9),)))[0]
    assert "u:-2" in down and "u:2" in up
    assert any(t and t.startswith("g:-") for t in down)
    assert any(t and t.startswith("g:+") for t in up)


def test_values_past_the_last_edge_fall_in_the_open_bin() -> None:
    huge = _window(
        (WeightChange(2, -1e6, -9999, 0, 1e5, 1.0),), Presence("bay", 0, 1e5, 1e5, 50.0, 999)
    )
    toks, _ = TOK.tokens_of(huge)
    assert "u:-8" in toks  # clamped
    assert UNK not in TOK.encode(huge).ids


def test_unseen_values_become_unk() -> None:
    w = EventWindow(
        "bay-1",
        1,
        0,
        1,
        99,
        Presence("bay", 0, 1, math.nan, 0.1, 1),
        (Presence("slot-77", 0, 1, 1, 0.2, 1),),
        (WeightChange(40, math.nan, 0, 0, 1, math.inf),),
        {},
        0,
    )
    ids = TOK.encode(w).ids
    toks, _ = TOK.tokens_of(w)
    assert ids[toks.index("hour:99")] == UNK
    assert ids[toks.index("slot:77")] == UNK
    assert ids[toks.index("slot:40")] == UNK
    assert sum(i == UNK for i in ids) >= 6


finite = st.floats(allow_nan=True, allow_infinity=True, width=32)
presences = st.builds(
    Presence,
    st.sampled_from(["bay", "slot-0", "slot-3", "slot-99", "weird"]),
    finite,
    finite,
    finite,
    finite,
    st.integers(-5, 10**6),
)
changes = st.builds(
    WeightChange, st.integers(-3, 200), finite, st.integers(-(10**6), 10**6), finite, finite, finite
)


@settings(max_examples=150, deadline=None)
@given(
    presence=st.none() | presences,
    reaches=st.lists(presences, max_size=8),
    chs=st.lists(changes, max_size=7),
    hour=st.integers(-50, 50),
    nb=st.integers(-3, 10**6),
    ug=finite,
)
def test_any_window_encodes_inside_the_vocabulary(presence, reaches, chs, hour, nb, ug) -> None:
    slots = {c.slot: SlotContext(c.slot, ug, 1, ug, 3) for c in chs}
    w = EventWindow("b", 0, 0.0, 1.0, hour, presence, tuple(reaches), tuple(chs), slots, nb)
    enc = TOK.encode(w)
    assert all(0 <= i < TOK.vocab_size for i in enc.ids)
    assert len(enc.ids) <= TOK.max_len
    assert len(enc.change_positions) == len(chs)


def test_windows_with_many_changes_split_into_fitting_parts() -> None:
    many = tuple(
        WeightChange(0, -120.0, -1, float(i), i + 0.5, 0.9) for i in range(TOK.max_changes * 2 + 1)
    )
    parts = TOK.split(_window(many))
    assert [len(p.changes) for p in parts] == [TOK.max_changes, TOK.max_changes, 1]
    with pytest.raises(ValueError, match="split"):
        TOK.encode(_window(many))


def test_file_round_trip_gives_the_same_ids(tmp_path: Path) -> None:
    path = tmp_path / "vocab.json"
    TOK.save(path)
    back = ShelfTokenizer.load(path)
    w = _window(
        (WeightChange(1, -240.0, -2, 2.0, 3.0, 0.9),), Presence("bay", 0.0, 8.0, 8.0, 0.4, 1)
    )
    assert back.encode(w) == TOK.encode(w)
    assert back.vocab_size == TOK.vocab_size


def test_a_file_of_another_format_is_refused(tmp_path: Path) -> None:
    data = TOK.to_json() | {"format": 99}
    (tmp_path / "v.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="format"):
        ShelfTokenizer.load(tmp_path / "v.json")
    with pytest.raises(ValueError, match="starts with"):
        ShelfTokenizer(tokens=["[CLS]", "[PAD]"])


def test_pad_batch_pads_right_with_a_mask() -> None:
    a = TOK.encode(_window())
    b = TOK.encode(_window((WeightChange(0, 5.0, 0, 0, 1, 0.5),)))
    ids, mask = pad_batch([a, b])
    assert len(ids[0]) == len(ids[1]) == len(b.ids)
    assert sum(mask[0]) == len(a.ids) and sum(mask[1]) == len(b.ids)
    assert ids[0][len(a.ids) :] == [0] * (len(b.ids) - len(a.ids))


def test_totals_and_timings_tell_a_quick_take_from_a_long_stay() -> None:
    take = _window(
        (WeightChange(1, -240.0, -2, 2.0, 3.0, 0.9),), Presence("bay", 0.0, 4.0, 4.0, 0.2, 1)
    )
    stay = _window(
        (WeightChange(1, -240.0, -2, 2.0, 3.0, 0.9), WeightChange(1, 120.0, 1, 9.0, 10.0, 0.9)),
        Presence("bay", 0.0, 30.0, 30.0, 0.2, 1),
    )
    t_take, t_stay = TOK.tokens_of(take)[0], TOK.tokens_of(stay)[0]
    assert "net:-2" in t_take and "net:-1" in t_stay
    assert TOK.tokens_of(_window())[0].count("net:0") == 1
    tails = [[t for t in toks if t and t.startswith("tail:")] for toks in (t_take, t_stay)]
    assert tails[0][0] != tails[1][0]  # left right after the change vs stayed on
    nobody = TOK.tokens_of(_window((WeightChange(1, 5.0, 0, 0, 1, 0.2),)))[0]
    assert "lead:none" in nobody and "tail:none" in nobody


def test_a_format_1_file_still_reads_and_writes_windows_without_totals(tmp_path: Path) -> None:
    old_tokens = [t for t in TOK.tokens if t.split(":")[0] not in ("net", "nchg", "lead", "tail")]
    old = {
        "format": 1,
        "tokens": old_tokens,
        "bins": {
            k: v for k, v in TOK.to_json()["bins"].items() if k not in ("nchg", "lead", "tail")
        },
        "max_reaches": TOK.max_reaches,
        "max_changes": TOK.max_changes,
    }
    (tmp_path / "v1.json").write_text(json.dumps(old))
    v1 = ShelfTokenizer.load(tmp_path / "v1.json")
    w = _window((WeightChange(1, -240.0, -2, 2.0, 3.0, 0.9),), Presence("bay", 0, 8, 8, 0.4, 1))
    toks, _ = v1.tokens_of(w)
    assert not any(t and t.split(":")[0] in ("net", "nchg", "lead", "tail") for t in toks)
    assert UNK not in v1.encode(w).ids
    assert len(v1.encode(w).ids) <= v1.max_len < TOK.max_len
    assert v1.to_json()["format"] == 1


def _bay(*changes: WeightChange, grams: dict[int, float]) -> EventWindow:
    slots = {k: SlotContext(k, g) for k, g in grams.items()}
    p = Presence("bay", 0.0, 20.0, 20.0, 0.4, 2)
    return EventWindow("bay-1", 1, 0.0, 20.0, 14, p, (), changes, slots)


def test_format_3_tells_a_misplaced_item_by_the_sku_it_weighs_like() -> None:
    took = WeightChange(2, -250.0, -1, 1.0, 2.0, 0.9)  # a 250 g item left slot 2
    put = WeightChange(0, 250.0, 1, 6.0, 7.0, 0.9)  # ... and arrived on the 240 g slot 0
    back = WeightChange(0, 480.0, 2, 9.0, 10.0, 0.9)  # two of slot 0's own
    w = _bay(took, put, back, grams={0: 240.0, 2: 250.0})
    assert [sku_match(w, c) for c in (took, put, back)] == ["sku:na", "sku:other", "sku:own"]
    odd = _bay(WeightChange(0, 130.0, 1, 1.0, 2.0, 0.9), grams={0: 240.0})
    assert sku_match(odd, odd.changes[0]) == "sku:none"
    toks, pos = TOK.tokens_of(w)
    groups = [toks[p : p + 17] for p in pos]
    assert [g[-1] for g in groups] == ["sku:na", "sku:other", "sku:own"]
    assert [g[-2] for g in groups] == ["nbr:2", "nbr:1", "nbr:1"]  # changes on other slots
    assert UNK not in TOK.encode(w).ids and len(TOK.encode(w).ids) <= TOK.max_len
    assert TOK.to_json()["format"] == 3


def test_a_format_2_file_still_reads_and_writes_windows_without_context(tmp_path: Path) -> None:
    old = TOK.to_json()
    old["format"] = 2
    old["tokens"] = [t for t in TOK.tokens if not t.startswith(("nbr:", "sku:"))]
    del old["bins"]["nbr"]
    (tmp_path / "v2.json").write_text(json.dumps(old))
    v2 = ShelfTokenizer.load(tmp_path / "v2.json")
    w = _bay(WeightChange(0, 250.0, 1, 6.0, 7.0, 0.9), grams={0: 240.0, 2: 250.0})
    toks, _ = v2.tokens_of(w)
    assert not any(t and t.startswith(("nbr:", "sku:")) for t in toks)
    assert UNK not in v2.encode(w).ids and v2.max_len < TOK.max_len
    assert (
        v2.to_json()["format"] == 2 and ShelfTokenizer.from_json(v2.to_json()).tokens == v2.tokens
    )
    back = ShelfTokenizer.from_json(json.loads(json.dumps(TOK.to_json())))
    assert back.tokens == TOK.tokens and back.encode(w) == TOK.encode(w)
