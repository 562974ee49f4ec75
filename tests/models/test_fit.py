"""Distillation losses and masked-token batches behave as the training relies on."""

from __future__ import annotations

import torch

from models.labels import IGNORE_INDEX
from models.tokens import CLS, MASK, PAD, SEP, ShelfTokenizer
from models.train.data import (
    Item,
    MaskCollator,
    PadCollator,
    WindowSet,
    class_weights,
    encode_records,
    split_records,
)
from models.train.fit import _attention_loss, _hidden_loss, _kl, _layer_map
from models.train.model import head_loss
from tests.models.factory import make_records


def test_kl_is_zero_for_equal_logits_and_positive_otherwise() -> None:
    a = torch.randn(4, 5)
    assert float(_kl(a, a, 2.0)) < 1e-6
    assert float(_kl(a, a.flip(-1), 2.0)) > 0


def test_layer_map_spreads_student_layers_over_the_teacher() -> None:
    assert _layer_map(2, 4) == [(1, 2), (2, 4)]
    assert _layer_map(3, 12) == [(1, 4), (2, 8), (3, 12)]


def test_transfer_losses_vanish_when_the_student_matches() -> None:
    h = [torch.randn(2, 6, 8) for _ in range(3)]
    mask = torch.ones(2, 6, 1)
    ident = torch.nn.Identity()
    assert float(_hidden_loss(ident, h, h, mask)) < 1e-9
    att = [torch.softmax(torch.randn(2, 2, 6, 6), -1) for _ in range(2)]
    assert float(_attention_loss(att, att, mask)) < 1e-9
    assert float(_attention_loss(att, att[::-1], mask)) > 0


def test_batches_put_stock_labels_at_change_markers_and_masks_skip_specials() -> None:
    tok = ShelfTokenizer.default()
    items = encode_records(split_records(make_records(40, seed=8), tok), tok)
    ds = WindowSet(items)
    batch = [ds[i] for i in range(len(ds))]
    x = PadCollator()(batch)
    labelled = x["stock_labels"] != IGNORE_INDEX
    assert int(labelled.sum()) == sum(1 for it in items for s in it.stock if s != IGNORE_INDEX)
    assert bool((x["input_ids"][labelled] == tok.id("[CHG]")).all())
    m = MaskCollator(tok.vocab_size, prob=0.5, seed=1)(batch)
    picked = m["labels"] != IGNORE_INDEX
    assert picked.any()
    orig = x["input_ids"]
    assert not bool(((orig == PAD) | (orig == CLS) | (orig == SEP))[picked].any())
    assert bool((m["input_ids"][picked] == MASK).float().mean() > 0.5)


def _item(interest: int, stock: tuple[int, ...]) -> Item:
    return Item((CLS, SEP), (), interest, stock)


def test_class_weights_lift_rare_classes_and_keep_the_mean_weight_at_one() -> None:
    items = [_item(0, (1,)) for _ in range(40)] + [_item(3, (2,)) for _ in range(10)]
    items += [_item(IGNORE_INDEX, (5, IGNORE_INDEX))]
    wi, ws = class_weights(items, power=0.5)
    assert float(wi[3]) > float(wi[0])
    assert float(ws[5]) > float(ws[2]) > float(ws[1])
    assert float(wi[1]) == 1.0  # a class with no items
    mean = (40 * wi[0] + 10 * wi[3]) / 50
    assert abs(float(mean) - 1.0) < 1e-5
    flat_i, flat_s = class_weights(items, power=0.0)
    assert torch.allclose(flat_i, torch.ones_like(flat_i))
    assert torch.allclose(flat_s, torch.ones_like(flat_s))
    capped = class_weights([_item(0, ()) for _ in range(1000)] + [_item(1, ())], cap=3.0)[0]
    assert abs(float(capped[1] / capped[0]) - 3.0) < 1e-4


def test_weighted_head_loss_counts_a_rare_class_more() -> None:
    interest = torch.zeros(2, 5)
    labels = torch.tensor([0, 3])
    stock = torch.zeros(2, 1, 6)
    no_stock = torch.full((2, 1), IGNORE_INDEX)
    plain = head_loss(interest, stock, labels, no_stock)
    w = torch.ones(5)
    assert torch.allclose(head_loss(interest, stock, labels, no_stock, interest_weight=w), plain)
    interest[1, 3] = 5.0  # the rare item is right, the common one unsure
    w[3] = 4.0
    assert float(head_loss(interest, stock, labels, no_stock, interest_weight=w)) < float(
        head_loss(interest, stock, labels, no_stock)
    )
