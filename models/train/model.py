"""The teacher and the student: a BERT encoder with an interest head and a stock head.

Both are :class:`ShelfBert` built from a ``transformers.BertConfig`` — never downloaded.
The interest head reads ``[CLS]``; the stock head reads every position and the caller
keeps the ``[CHG]`` ones. Presets run from ``base`` (12 x 768, the production teacher on
a GPU node) down to sizes a CPU trains in seconds; students are 2-4 layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.utils import ModelOutput

from models.labels import IGNORE_INDEX, INTEREST_LABELS, STOCK_LABELS

# name: (layers, hidden, heads, intermediate)
TEACHER_PRESETS: dict[str, tuple[int, int, int, int]] = {
    "base": (12, 768, 12, 3072),
    "medium": (8, 512, 8, 2048),
    "small": (4, 256, 4, 1024),
    "mini": (4, 128, 4, 512),
    "tiny": (2, 64, 2, 256),
}
STUDENT_PRESETS: dict[str, tuple[int, int, int, int]] = {
    "student-l": (4, 192, 4, 768),
    "student": (2, 128, 2, 512),
    "student-tiny": (2, 48, 2, 192),
}


def bert_config(preset: str, *, vocab_size: int, max_len: int, dropout: float = 0.1) -> BertConfig:
    """A ``BertConfig`` for a named preset sized to the shelf vocabulary."""
    table = {**TEACHER_PRESETS, **STUDENT_PRESETS}
    if preset not in table:
        raise ValueError(f"unknown model preset {preset!r}; known: {', '.join(table)}")
    layers, hidden, heads, inter = table[preset]
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=inter,
        max_position_embeddings=max(max_len, 8),
        type_vocab_size=1,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=0,
        num_interest=len(INTEREST_LABELS),
        num_stock=len(STOCK_LABELS),
        attn_implementation="eager",
    )


@dataclass
class ShelfOutput(ModelOutput):
    """Logits of both heads (and the loss when labels were given)."""

    loss: torch.Tensor | None = None
    interest_logits: torch.Tensor | None = None
    stock_logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class ShelfBert(BertPreTrainedModel):
    """BERT encoder + interest head on ``[CLS]`` + stock head on every token."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.interest_head = nn.Linear(config.hidden_size, config.num_interest)
        self.stock_head = nn.Linear(config.hidden_size, config.num_stock)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        interest_labels: torch.Tensor | None = None,
        stock_labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        **_: Any,
    ) -> ShelfOutput:
        """Logits of both heads; the summed cross-entropy when labels are given."""
        out = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        seq = self.dropout(out.last_hidden_state)
        interest = self.interest_head(seq[:, 0])
        stock = self.stock_head(seq)
        loss = None
        if interest_labels is not None and stock_labels is not None:
            loss = head_loss(interest, stock, interest_labels, stock_labels)
        return ShelfOutput(
            loss=loss,
            interest_logits=interest,
            stock_logits=stock,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )


MASKED_LOGIT = -1e4
"""What a forbidden stock logit becomes in training: finite (KL and fp16 stay defined),
far enough below any real logit that its softmax share is 0 in float32."""


def mask_stock_logits(stock: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """Stock logits with the labels physics forbids (``allowed`` False) pushed out of reach.

    The same table the runtime decodes with (:mod:`models.physics`); ``None`` masks nothing.
    """
    if allowed is None:
        return stock
    return stock.masked_fill(~allowed.to(stock.device), MASKED_LOGIT)


def head_loss(
    interest: torch.Tensor,
    stock: torch.Tensor,
    interest_labels: torch.Tensor,
    stock_labels: torch.Tensor,
    *,
    interest_weight: torch.Tensor | None = None,
    stock_weight: torch.Tensor | None = None,
    stock_allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of both heads, each over its labelled items only.

    ``interest_weight`` and ``stock_weight`` weigh each class (see
    :func:`models.train.data.class_weights`); ``None`` weighs every class alike.
    ``stock_allowed`` (``(B, L, labels)``, from :class:`~models.train.data.PadCollator`)
    is the physics mask: the stock loss is taken over the allowed labels only, as the
    runtime decodes, and a label the measured change forbids (a mislabelled or
    mis-measured change) teaches nothing and is left out.
    """
    ce = nn.functional.cross_entropy
    if stock_allowed is not None:
        stock = mask_stock_logits(stock, stock_allowed)
        labels = stock_labels.clamp(min=0).unsqueeze(-1)
        ok = stock_allowed.to(stock.device).gather(-1, labels).squeeze(-1)
        stock_labels = stock_labels.masked_fill(~ok, IGNORE_INDEX)
    loss = interest.new_zeros(())
    if (interest_labels != IGNORE_INDEX).any():
        loss = loss + ce(
            interest, interest_labels, weight=interest_weight, ignore_index=IGNORE_INDEX
        )
    if (stock_labels != IGNORE_INDEX).any():
        loss = loss + ce(
            stock.reshape(-1, stock.shape[-1]),
            stock_labels.reshape(-1),
            weight=stock_weight,
            ignore_index=IGNORE_INDEX,
        )
    return loss


def build_model(
    preset: str, *, vocab_size: int, max_len: int, checkpoint: Path | None = None
) -> ShelfBert:
    """A fresh model of ``preset``, or one read from a local checkpoint folder (never fetched)."""
    if checkpoint is not None:
        path = Path(checkpoint)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: not a local checkpoint (no config.json)")
        model = ShelfBert.from_pretrained(str(path), local_files_only=True)
        if model.config.vocab_size < vocab_size:
            raise ValueError(
                f"{path}: checkpoint vocabulary {model.config.vocab_size} < tokenizer {vocab_size}"
            )
        return model
    return ShelfBert(bert_config(preset, vocab_size=vocab_size, max_len=max_len))


def parameter_count(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())
