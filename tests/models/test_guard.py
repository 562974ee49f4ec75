"""The guard: per crowding bucket, the student or the fitted rules decide; the bundle carries it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from models.bundle import SIGNATURE, verify_bundle
from models.errors import BundleError
from models.guard import (
    ALL,
    BUCKETS,
    BucketScore,
    Guard,
    changes_bucket,
    shoppers_bucket,
    window_buckets,
)
from models.rules import RuleBaseline, StockRules
from models.types import Presence, WeightChange
from models.window import EventWindow, SlotContext

SCORE = st.builds(
    BucketScore,
    st.floats(0, 1, allow_nan=False),
    st.floats(0, 1, allow_nan=False),
    st.integers(0, 200),
)
HEAD_SCORES = st.dictionaries(st.sampled_from(BUCKETS), SCORE, min_size=1)
SCORES = st.dictionaries(st.sampled_from(("interest", "stock")), HEAD_SCORES, min_size=1)


def window(changes: int, entries: int) -> EventWindow:
    p = Presence("bay", 0.0, 9.0, 9.0, 0.5, entries) if entries else None
    cs = tuple(WeightChange(k % 3, -100.0, -1, k, k + 1.0, 0.9) for k in range(changes))
    return EventWindow("bay-1", 1, 0.0, 9.0, 12, p, changes=cs, slots={0: SlotContext(0, 100.0)})


def test_buckets_split_at_the_documented_edges() -> None:
    assert [changes_bucket(n) for n in (0, 1, 2, 3, 4, 5, 40)] == [
        "0", "1-2", "1-2", "3-4", "3-4", "5+", "5+",
    ]  # fmt: skip
    assert [shoppers_bucket(n) for n in (0, 1, 2, 7)] == ["0", "1", "2+", "2+"]
    assert window_buckets(window(3, 2)) == ("changes:3-4", "shoppers:2+")
    assert window_buckets(window(1, 0)) == ("changes:1-2", "shoppers:0")


@settings(max_examples=200, deadline=None)
@given(SCORES, st.floats(0, 0.2, allow_nan=False), st.integers(0, 50))
def test_rules_decide_exactly_where_they_beat_the_student(
    scores: dict[str, dict[str, BucketScore]], margin: float, support: int
) -> None:
    g = Guard.fit(scores, margin=margin, min_support=support)
    for head, per in scores.items():
        overall = per.get(ALL)
        base = (
            "rules"
            if overall is not None
            and overall.support > 0
            and overall.rules > overall.student + margin
            else "model"
        )
        assert g.who(head, ALL) == base
        thin = "rules" if head == "stock" else base
        for b in BUCKETS[1:]:
            s = per.get(b)
            judged = s is not None and s.support >= support
            want = ("rules" if s.rules > s.student + margin else "model") if judged else thin
            assert g.who(head, b) == want
    back = Guard.from_dict(json.loads(json.dumps(g.to_dict())))
    for head in ("interest", "stock"):
        for b in BUCKETS:
            assert back.who(head, b) == g.who(head, b)
        for n in (0, 1, 3, 6):
            for e in (0, 1, 2):
                w = window(n, e)
                by_bucket = any(g.who(head, b) == "rules" for b in window_buckets(w))
                assert g.decider(head, w) == ("rules" if by_bucket else g.who(head, ALL))
                assert back.decider(head, w) == g.decider(head, w)


def test_a_bucket_is_ruled_only_by_its_own_axis() -> None:
    s = {
        ALL: BucketScore(0.9, 0.8, 500),
        "changes:5+": BucketScore(0.6, 0.9, 40),
        "shoppers:2+": BucketScore(0.9, 0.7, 40),
    }
    s |= {b: BucketScore(0.9, 0.8, 40) for b in BUCKETS if b not in s}
    g = Guard.fit({"stock": s}, min_support=20)
    assert g.ruled() == {"stock": ["changes:5+"]}
    assert g.decider("stock", window(5, 1)) == "rules"
    assert g.decider("stock", window(2, 2)) == "model"
    thin = Guard.fit({"stock": {ALL: s[ALL], "changes:1-2": BucketScore(0.9, 0.8, 5)}})
    assert thin.decider("stock", window(1, 1)) == "rules"  # too few labels to judge the student
    loose = Guard.fit({"stock": {ALL: s[ALL]}}, cautious=())
    assert loose.decider("stock", window(6, 3)) == "model"
    assert g.decider("interest", window(5, 1)) == "model"  # a head the guard never judged
    assert Guard().decider("stock", window(6, 3)) == "model"


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ([], "guard: not an object"),
        ({"format": 9, "heads": {}}, "guard.format"),
        ({"format": 1, "heads": {"price": {}}}, "unknown head 'price'"),
        ({"format": 1, "heads": {"stock": {"changes:9": {"decides": "model"}}}}, "unknown bucket"),
        ({"format": 1, "heads": {"stock": {"all": {"decides": "teacher"}}}}, "stock.all.decides"),
        (
            {
                "format": 1,
                "heads": {
                    "stock": {
                        "all": {
                            "decides": "rules",
                            "student": float("nan"),
                            "rules": 1,
                            "support": 3,
                        }
                    }
                },
            },
            "guard.heads.stock.all.student",
        ),
        ({"format": 1, "margin": -1, "heads": {}}, "guard.margin"),
        ({"format": 1, "rules": 3, "heads": {}}, "guard.rules"),
    ],
)
def test_a_bad_guard_is_refused_naming_the_key(raw: object, where: str) -> None:
    with pytest.raises(ValueError, match="guard") as err:
        Guard.from_dict(raw)
    assert where in str(err.value)


def test_rule_thresholds_round_trip_and_refuse_unknown_keys() -> None:
    r = RuleBaseline(stock=StockRules(noise_grams=7.5, restock_units=4))
    assert RuleBaseline.from_dict(r.to_dict()) == r
    with pytest.raises(ValueError, match=r"stock\.bogus"):
        RuleBaseline.from_dict({"stock": {"bogus": 1.0}})
    with pytest.raises(ValueError, match=r"interest\.touch_handled"):
        RuleBaseline.from_dict({"interest": {"touch_handled": "yes"}})
    with pytest.raises(ValueError, match=r"stock\.restock_units"):
        RuleBaseline.from_dict({"stock": {"restock_units": 2.5}})


RULED = Guard.fit(
    {
        "stock": {b: BucketScore(0.9, 0.8, 300) for b in BUCKETS}
        | {"changes:3-4": BucketScore(0.5, 0.9, 50)},
        "interest": {ALL: BucketScore(0.9, 0.6, 300)},
    },
    rules=RuleBaseline(stock=StockRules(noise_grams=5.0, restock_units=2)).to_dict(),
)


@pytest.fixture(scope="module")
def guarded_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ed25519PrivateKey]:
    pytest.importorskip("torch")
    from tests.models.conftest import build_bundle

    built = build_bundle(tmp_path_factory.mktemp("guarded"), version=4, guard=RULED)
    return built.path, built.key


def test_runtime_takes_stock_from_the_rules_in_a_ruled_bucket(
    guarded_bundle: tuple[Path, Ed25519PrivateKey],
) -> None:
    from models.runtime import ModelRuntime

    path, key = guarded_bundle
    rt = ModelRuntime(trusted_keys=[key.public_key()])
    rt.load(path)
    assert rt.guard.ruled() == {"stock": ["changes:3-4"], "interest": []}
    rules = RuleBaseline.from_dict(dict(RULED.rules or {}))
    crowded, calm = window(3, 1), window(1, 1)
    a, b = rt.classify([crowded, calm])
    assert a.stock_by == "rules" and a.interest_by == "model"
    assert [lab for lab, _ in a.stock] == rules.predict(crowded)[1]
    assert [c for _, c in a.stock] == [c.confidence for c in crowded.changes]
    assert b.stock_by == "model" and b.interest_by == "model"


def test_a_bundle_with_a_broken_guard_is_refused(
    guarded_bundle: tuple[Path, Ed25519PrivateKey], tmp_path: Path
) -> None:
    import base64
    import shutil

    path, key = guarded_bundle
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["guard"]["heads"]["stock"]["all"]["decides"] = "coin"
    body = json.dumps(manifest, indent=1, sort_keys=True).encode()
    (bad / "manifest.json").write_bytes(body)
    (bad / SIGNATURE).write_bytes(base64.b64encode(key.sign(body)) + b"\n")
    with pytest.raises(BundleError, match=r"guard\.heads\.stock\.all\.decides"):
        verify_bundle(bad, trusted_keys=[key.public_key()])
