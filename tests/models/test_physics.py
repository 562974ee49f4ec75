"""Labels obey physics: the table, the runtime's masked decoding, the rules, the manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models.bundle import MANIFEST
from models.errors import BundleError
from models.labels import STOCK_LABELS
from models.physics import DECODING, allowed_labels, allowed_mask, allows
from models.rules import StockRules, stock_rule
from models.runtime import ModelRuntime
from models.runtime.base import FloatArray, IntArray
from models.runtime.decoding import decode_stock, decode_unmasked
from models.runtime.onnx import OnnxBackend
from models.types import Presence, WeightChange
from models.window import EventWindow, SlotContext
from tests.models.conftest import BuiltBundle
from tests.models.test_bundle import copy, resign

N = len(STOCK_LABELS)
any_logit = st.floats(width=32, allow_nan=True, allow_infinity=True)
logit_rows = arrays(np.float32, (1, N), elements=any_logit)


def _change(units: int, grams: float, slot: int = 0) -> WeightChange:
    return WeightChange(slot, grams, units, 1.0, 3.5, 0.9)  # a hand takes a few seconds


def _window(*changes: WeightChange, presence: bool = True) -> EventWindow:
    shopper = Presence("bay", 0, 8, 8.0, 0.6, 1) if presence else None
    ctx = {0: SlotContext(0, 100.0), 1: SlotContext(1, 45.0)}
    return EventWindow("b", 1, 0, 8, 12, shopper, (), tuple(changes), ctx, 0)


def test_the_table() -> None:
    assert allowed_labels(-2, -200.0) == ("removal", "sensor_fault")
    assert allowed_labels(6, 600.0) == ("return", "misplaced", "restock", "sensor_fault")
    assert allowed_labels(0, 2.0) == ("none", "misplaced", "sensor_fault")
    assert allowed_labels(0, -2.0) == ("none", "sensor_fault")
    assert allowed_labels(0, float("nan")) == ("sensor_fault",)
    with pytest.raises(ValueError, match="unknown stock label 'stolen'"):
        allows("stolen", 1, 1.0)
    mask = allowed_mask([_change(6, 600.0), _change(-1, -100.0)])
    assert mask.shape == (2, N) and not mask[0, STOCK_LABELS.index("removal")]


@settings(deadline=None)
@given(logits=logit_rows)
def test_a_plus_six_change_is_never_a_removal_whatever_the_logits(logits: FloatArray) -> None:
    ((k, conf),) = decode_stock(logits, allowed_mask([_change(6, 600.0)]))
    assert STOCK_LABELS[k] not in ("removal", "none")
    assert STOCK_LABELS[k] in allowed_labels(6, 600.0)
    assert 0.0 <= conf <= 1.0


@settings(deadline=None)
@given(
    logits=arrays(np.float32, (4, N), elements=any_logit),
    units=st.lists(st.integers(-50, 50), min_size=4, max_size=4),
    grams=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=4, max_size=4),
)
def test_every_decoded_label_is_one_the_change_allows(
    logits: FloatArray, units: list[int], grams: list[float]
) -> None:
    changes = [_change(u, g) for u, g in zip(units, grams, strict=True)]
    for (k, _), c in zip(decode_stock(logits, allowed_mask(changes)), changes, strict=True):
        assert allows(STOCK_LABELS[k], c.units, c.grams)


def test_masking_keeps_the_best_allowed_label_and_renormalises() -> None:
    logits = np.asarray([[1.0, 9.0, 2.0, 0.0, 3.0, 0.0]], np.float32)  # removal wins unmasked
    assert STOCK_LABELS[decode_unmasked(logits)[0][0]] == "removal"
    ((k, conf),) = decode_stock(logits, allowed_mask([_change(6, 600.0)]))
    assert STOCK_LABELS[k] == "restock"
    e = np.exp(np.asarray([2.0, 0.0, 3.0, 0.0]))  # return, misplaced, restock, sensor_fault
    assert conf == pytest.approx(e[2] / e.sum(), rel=1e-5)


class HostileBackend(OnnxBackend):
    """The real model for loading (golden outputs replay), then whatever stock logits we set."""

    stock: ClassVar[np.ndarray | None] = None

    def run(self, input_ids: IntArray, attention_mask: IntArray) -> tuple[FloatArray, FloatArray]:
        interest, stock = super().run(input_ids, attention_mask)
        if HostileBackend.stock is not None:
            stock = np.broadcast_to(HostileBackend.stock, stock.shape).astype(np.float32)
        return interest, stock


@pytest.fixture
def hostile(bundle_factory: BuiltBundle) -> ModelRuntime:
    HostileBackend.stock = None
    rt = ModelRuntime(
        trusted_keys=[bundle_factory.key.public_key()], backends={"onnx": HostileBackend}
    )
    rt.load(bundle_factory.path)
    return rt


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(logits=arrays(np.float32, (N,), elements=any_logit))
def test_the_runtime_never_books_a_plus_six_change_as_a_removal(
    hostile: ModelRuntime, logits: FloatArray
) -> None:
    HostileBackend.stock = logits
    try:
        w = _window(_change(6, 600.0), _change(-1, -45.0, slot=1), _change(0, 3.0))
        (d,) = hostile.classify([w])
    finally:
        HostileBackend.stock = None
    (up, conf), (down, _), (still, _) = d.stock
    assert up in allowed_labels(6, 600.0) and up != "removal"
    assert down in ("removal", "sensor_fault")
    assert still in ("none", "misplaced", "sensor_fault")
    assert 0.0 <= conf <= 1.0


def test_removal_at_any_strength_becomes_the_best_allowed_label(hostile: ModelRuntime) -> None:
    HostileBackend.stock = np.asarray([0, 1e6, 1, 0, 2, 0], np.float32)
    try:
        (d,) = hostile.classify([_window(_change(6, 600.0))])
    finally:
        HostileBackend.stock = None
    assert d.stock[0][0] == "restock"


def test_bundles_record_their_decoding_and_older_ones_decode_masked(
    bundle_factory: BuiltBundle, tmp_path: Path
) -> None:
    manifest = json.loads((bundle_factory.path / MANIFEST).read_text())
    assert manifest["decoding"] == DECODING == "physics-mask-v1"
    old = copy(bundle_factory, tmp_path)
    resign(old, bundle_factory.key, lambda m: m.pop("decoding"))
    HostileBackend.stock = None
    rt = ModelRuntime(
        trusted_keys=[bundle_factory.key.public_key()], backends={"onnx": HostileBackend}
    )
    assert rt.load(old).decoding == DECODING
    HostileBackend.stock = np.asarray([0, 1e6, 0, 0, 0, 0], np.float32)
    try:
        (d,) = rt.classify([_window(_change(6, 600.0))])
    finally:
        HostileBackend.stock = None
    assert d.stock[0][0] != "removal"


def test_a_bundle_with_an_unknown_decoding_is_refused(
    bundle_factory: BuiltBundle, tmp_path: Path
) -> None:
    path = copy(bundle_factory, tmp_path)
    resign(path, bundle_factory.key, lambda m: m.update(decoding="argmax"))
    rt = ModelRuntime(trusted_keys=[bundle_factory.key.public_key()])
    with pytest.raises(BundleError, match="decoding 'argmax' unknown; known: physics-mask-v1"):
        rt.load(path)


@settings(deadline=None)
@given(
    units=st.integers(-30, 30),
    grams=st.floats(-5000, 5000) | st.sampled_from([float("nan"), float("inf")]),
    conf=st.floats(0, 1),
    presence=st.booleans(),
    noise=st.floats(0, 500),
    fit=st.floats(0, 0.5),
    restock=st.integers(1, 8),
    fault=st.floats(0, 1),
)
def test_the_rules_obey_the_same_table(
    units: int,
    grams: float,
    conf: float,
    presence: bool,
    noise: float,
    fit: float,
    restock: int,
    fault: float,
) -> None:
    c = WeightChange(0, grams, units, 1.0, 2.0, conf)
    label = stock_rule(StockRules(noise, fit, restock, fault), _window(c, presence=presence), c)
    assert allows(label, units, grams), (label, units, grams)


def test_rules_that_would_break_physics_fall_back_to_the_sign() -> None:
    w = _window()
    tiny = _change(1, 8.0)  # a 5 g unit: under the noise threshold, yet a whole unit came
    assert stock_rule(StockRules(noise_grams=10.0), w, tiny) == "return"
    dip = _change(0, -40.0)  # 0.4 of a unit left: no whole unit, so no removal
    assert stock_rule(StockRules(), w, dip) == "none"
