"""Training through the HF Trainer: masked-token pretraining, fine-tuning, distillation.

Every stage is a ``transformers.Trainer`` run, so ``accelerate launch`` or ``torchrun``
spreads it over GPUs unchanged; on a CPU it is one process. The teacher first learns
the shelf language on every window (labelled or not) by masked-token prediction, then
both heads on the labelled ones. The student learns from the teacher's soft targets
(temperature, KL) and the hard labels; optionally also from the teacher's hidden states
(through a learned projection) and attention maps, as TinyBERT does. Fine-tuning and
the student's hard-label loss can weigh classes (``class_weights``), so rare stock
kinds count. Every stock loss (hard labels and the teacher's soft targets) is taken
over the labels the physics table allows for the change (``models.physics``), the
mask the runtime decodes with.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import BertForMaskedLM, PrinterCallback, Trainer, TrainingArguments

from models.tokens import CHG_ID
from models.train.data import Item, MaskCollator, PadCollator, WindowSet
from models.train.model import ShelfBert, head_loss, mask_stock_logits


@dataclass(frozen=True)
class StageArgs:
    """Knobs of one training stage."""

    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 0
    progress: bool = True


def _args(out: str, a: StageArgs, **extra: Any) -> TrainingArguments:
    return TrainingArguments(
        output_dir=out,
        num_train_epochs=a.epochs,
        per_device_train_batch_size=a.batch_size,
        learning_rate=a.lr,
        weight_decay=a.weight_decay,
        warmup_ratio=a.warmup_ratio,
        lr_scheduler_type="linear",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=not a.progress,
        seed=a.seed,
        data_seed=a.seed,
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        **extra,
    )


def _train(trainer: Trainer) -> None:
    """Train without the Trainer printing its metrics dict (progress bars stay if asked for)."""
    trainer.remove_callback(PrinterCallback)
    trainer.train()


def _fit_labelled(
    trainer: type[Trainer], model: nn.Module, items: Sequence[Item], a: StageArgs, **kw: Any
) -> None:
    """Train ``model`` on labelled ``items`` with ``trainer`` (extra arguments in ``kw``)."""
    with tempfile.TemporaryDirectory() as out:
        _train(
            trainer(
                model=model,
                args=_args(out, a, label_names=["interest_labels", "stock_labels"]),
                train_dataset=WindowSet(items),
                data_collator=PadCollator(),
                **kw,
            )
        )


def pretrain_mlm(model: ShelfBert, items: Sequence[Item], a: StageArgs) -> ShelfBert:
    """Masked-token pretraining of ``model``'s encoder on ``items`` (labels unused)."""
    mlm = BertForMaskedLM(model.config)
    mlm.bert.load_state_dict(model.bert.state_dict())
    with tempfile.TemporaryDirectory() as out:
        _train(
            Trainer(
                model=mlm,
                args=_args(out, a),
                train_dataset=WindowSet(items),
                data_collator=MaskCollator(model.config.vocab_size, seed=a.seed),
            )
        )
    model.bert.load_state_dict(mlm.bert.state_dict())
    return model


Weights = tuple[torch.Tensor, torch.Tensor]  # per-class loss weights: (interest, stock)


def _weighted(weights: Weights | None, device: torch.device) -> dict[str, Any]:
    if weights is None:
        return {}
    return {"interest_weight": weights[0].to(device), "stock_weight": weights[1].to(device)}


class WeightedTrainer(Trainer):
    """A Trainer whose loss is both heads' cross-entropy with per-class weights."""

    def __init__(self, *args: Any, class_weights: Weights | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.class_weights = class_weights

    def hard_loss(self, out: Any, inputs: dict[str, Any]) -> torch.Tensor:
        """Both heads' weighted cross-entropy of ``out`` against the batch's labels."""
        return head_loss(
            out.interest_logits,
            out.stock_logits,
            inputs["interest_labels"],
            inputs["stock_labels"],
            stock_allowed=inputs.get("stock_allowed"),
            **_weighted(self.class_weights, inputs["input_ids"].device),
        )

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | None = None,
    ) -> Any:
        out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        loss = self.hard_loss(out, inputs)
        return (loss, out) if return_outputs else loss


def finetune(
    model: ShelfBert,
    items: Sequence[Item],
    a: StageArgs,
    *,
    class_weights: Weights | None = None,
) -> ShelfBert:
    """Supervised training of both heads on labelled ``items``."""
    _fit_labelled(WeightedTrainer, model, items, a, class_weights=class_weights)
    return model.eval()


@dataclass(frozen=True)
class DistillArgs:
    """How the student learns from the teacher."""

    temperature: float = 2.0
    alpha: float = 0.5  # weight of the soft targets; 1 - alpha for the hard labels
    hidden_weight: float = 0.0  # TinyBERT hidden-state transfer (0: off)
    attention_weight: float = 0.0  # TinyBERT attention transfer (0: off)


class _Pair(nn.Module):
    """The student and the projection its hidden states are compared through."""

    def __init__(self, student: ShelfBert, teacher_hidden: int) -> None:
        super().__init__()
        self.student = student
        self.proj = nn.Linear(student.config.hidden_size, teacher_hidden)

    def forward(self, **kw: Any) -> Any:
        return self.student(**kw)


class DistillTrainer(WeightedTrainer):
    """A Trainer whose loss is soft targets + hard labels (+ hidden/attention transfer)."""

    def __init__(
        self,
        *args: Any,
        teacher: ShelfBert,
        distill: DistillArgs,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.teacher = teacher.eval()
        self.distill = distill

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | None = None,
    ) -> Any:
        d = self.distill
        hid, att = d.hidden_weight > 0, d.attention_weight > 0
        x = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
        pair: Any = model.module if hasattr(model, "module") else model
        s = pair.student(**x, output_hidden_states=hid, output_attentions=att)
        self.teacher.to(inputs["input_ids"].device)
        with torch.no_grad():
            t = self.teacher(**x, output_hidden_states=hid, output_attentions=att)
        temp = d.temperature
        kd = _kl(s.interest_logits, t.interest_logits, temp)
        chg = inputs["input_ids"] == CHG_ID
        if chg.any():
            allowed = inputs.get("stock_allowed")
            s_stock = mask_stock_logits(s.stock_logits, allowed)
            t_stock = mask_stock_logits(t.stock_logits, allowed)
            kd = kd + _kl(s_stock[chg], t_stock[chg], temp)
        hard = self.hard_loss(s, inputs)
        loss = d.alpha * kd + (1 - d.alpha) * hard
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        if hid:
            loss = loss + d.hidden_weight * _hidden_loss(
                pair.proj, s.hidden_states, t.hidden_states, mask
            )
        if att:
            loss = loss + d.attention_weight * _attention_loss(s.attentions, t.attentions, mask)
        return (loss, s) if return_outputs else loss


def _kl(student: torch.Tensor, teacher: torch.Tensor, temp: float) -> torch.Tensor:
    return F.kl_div(
        F.log_softmax(student / temp, -1), F.softmax(teacher / temp, -1), reduction="batchmean"
    ) * (temp * temp)


def _layer_map(n_student: int, n_teacher: int) -> list[tuple[int, int]]:
    return [(j, round(j * n_teacher / n_student)) for j in range(1, n_student + 1)]


def _hidden_loss(
    proj: nn.Module, hs: Sequence[torch.Tensor], ht: Sequence[torch.Tensor], mask: torch.Tensor
) -> torch.Tensor:
    pairs = [(0, 0), *_layer_map(len(hs) - 1, len(ht) - 1)]
    total = hs[0].new_zeros(())
    for j, k in pairs:
        err = (proj(hs[j]) - ht[k]) ** 2 * mask
        total = total + err.sum() / (mask.sum() * ht[k].shape[-1])
    return total / len(pairs)


def _attention_loss(
    a_s: Sequence[torch.Tensor], a_t: Sequence[torch.Tensor], mask: torch.Tensor
) -> torch.Tensor:
    m = mask.squeeze(-1)
    valid = m.unsqueeze(2) * m.unsqueeze(1)  # (B, L, L)
    total = a_s[0].new_zeros(())
    pairs = _layer_map(len(a_s), len(a_t))
    for j, k in pairs:
        err = (a_s[j - 1].mean(1) - a_t[k - 1].mean(1)) ** 2 * valid
        total = total + err.sum() / m.sum()
    return total / len(pairs)


def distill(
    student: ShelfBert,
    teacher: ShelfBert,
    items: Sequence[Item],
    a: StageArgs,
    d: DistillArgs,
    *,
    class_weights: Weights | None = None,
) -> ShelfBert:
    """Train ``student`` on ``items`` from ``teacher``'s outputs and the labels."""
    pair = _Pair(student, teacher.config.hidden_size)
    _fit_labelled(
        DistillTrainer, pair, items, a, teacher=teacher, distill=d, class_weights=class_weights
    )
    return student.eval()
