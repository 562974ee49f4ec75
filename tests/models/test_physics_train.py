"""Training applies the runtime's physics mask: collated per change, used by the stock loss."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from models.dataset import LabeledWindow
from models.labels import IGNORE_INDEX, STOCK_LABELS
from models.physics import allowed_row
from models.tokens import ShelfTokenizer
from models.train.data import PadCollator, WindowSet, encode_records
from models.train.model import MASKED_LOGIT, head_loss, mask_stock_logits
from models.types import Presence, WeightChange
from models.window import EventWindow, SlotContext

N = len(STOCK_LABELS)


def _record() -> LabeledWindow:
    up = WeightChange(0, 600.0, 6, 1.0, 2.0, 0.9)
    down = WeightChange(0, -100.0, -1, 3.0, 4.0, 0.9)
    w = EventWindow(
        "b", 1, 0, 8, 12, Presence("bay", 0, 8, 8.0, 0.6, 1), (), (up, down),
        {0: SlotContext(0, 100.0)}, 0,
    )  # fmt: skip
    return LabeledWindow(w, "take", ["restock", "removal"])


def test_the_collator_places_each_changes_mask_at_its_position() -> None:
    tok = ShelfTokenizer.default()
    (item,) = encode_records([_record()], tok)
    batch = PadCollator()([WindowSet([item])[0]])
    allowed = batch["stock_allowed"]
    assert allowed.shape == (1, len(item.ids), N)
    up, down = item.change_positions
    assert tuple(allowed[0, up].tolist()) == allowed_row(6, 600.0)
    assert tuple(allowed[0, down].tolist()) == allowed_row(-1, -100.0)
    assert bool(allowed[0, 0].all())  # [CLS]: no stock label, nothing masked


def test_the_stock_loss_is_taken_over_the_allowed_labels_only() -> None:
    stock = torch.tensor([[[0.0, 5.0, 1.0, 0.0, 2.0, 0.0]]])  # one change, removal favoured
    labels = torch.tensor([[STOCK_LABELS.index("restock")]])
    allowed = torch.tensor([[list(allowed_row(6, 600.0))]])
    interest = torch.zeros((1, 5))
    no_interest = torch.tensor([IGNORE_INDEX])
    got = head_loss(interest, stock, no_interest, labels, stock_allowed=allowed)
    kept = torch.tensor([[1.0, 0.0, 2.0, 0.0]])  # return, misplaced, restock, sensor_fault
    want = F.cross_entropy(kept, torch.tensor([2]))
    assert torch.isclose(got, want, atol=1e-5)
    unmasked = head_loss(interest, stock, no_interest, labels)
    assert unmasked > got  # removal's weight no longer counts against restock
    masked = mask_stock_logits(stock, allowed)
    assert masked[0, 0, STOCK_LABELS.index("removal")] == MASKED_LOGIT


def test_a_label_physics_forbids_teaches_nothing() -> None:
    stock = torch.randn((1, 1, N), requires_grad=True)
    labels = torch.tensor([[STOCK_LABELS.index("removal")]])  # but 6 units came
    allowed = torch.tensor([[list(allowed_row(6, 600.0))]])
    loss = head_loss(
        torch.zeros((1, 5)), stock, torch.tensor([IGNORE_INDEX]), labels, stock_allowed=allowed
    )
    assert float(loss) == 0.0
