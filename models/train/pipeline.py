"""Windows in, gated bundle out: teacher -> student -> ONNX -> int8 -> gates -> bundle + report.

:func:`train_bundle` takes labelled training windows and held-out windows (another
store, ideally), fits the rule baseline, pretrains and fine-tunes the teacher, distils
the student, exports and quantizes it, scores every contender on the held-out set,
applies the gates (``models.train.gates``: against the teacher, the fp32 student and
the fitted rules, and per class) and, only if they pass, writes a signed bundle whose
golden outputs the runtime then reproduces before the bundle is renamed into place.
Every model contender's stock head is decoded through the physics mask, as on a unit.
The bundle's guard (:mod:`models.guard`, fitted by :func:`models.train.buckets.fit_guard`)
hands a head to the fitted rules in each crowding bucket where the rules beat the int8
student on the gate set; ``unit (int8 + guard)`` scores what a unit then emits, and the
shop gates judge that.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tqdm.auto import tqdm

from models.atomic import swap_dir
from models.bundle import MODEL_ONNX, MODEL_TFLITE, write_bundle
from models.dataset import LabeledWindow
from models.errors import BundleError, ModelError
from models.guard import Guard
from models.rules import RuleBaseline
from models.runtime.classifier import ModelRuntime, run_encoded
from models.runtime.onnx import OnnxBackend
from models.tokens import Encoded, ShelfTokenizer, pad_batch
from models.train.buckets import fit_guard, guarded
from models.train.data import Item, class_weights, encode_records, split_records
from models.train.evaluate import (
    Score,
    agreement,
    predict_backend,
    predict_rules,
    predict_torch,
    score,
)
from models.train.export import export_onnx, export_tflite, quantize_int8
from models.train.fit import DistillArgs, StageArgs, distill, finetune, pretrain_mlm
from models.train.gates import Gates, metric_gates, shop_gates, trained_classes
from models.train.model import ShelfBert, build_model, parameter_count
from models.train.report import write_report

log = logging.getLogger(__name__)


class DataError(ModelError, ValueError):
    """Training data that cannot make a model (too few windows, no labels)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs besides the data."""

    teacher: str = "small"
    student: str = "student"
    checkpoint: Path | None = None
    pretrain: StageArgs = field(default_factory=lambda: StageArgs(epochs=2, lr=5e-4))
    finetune: StageArgs = field(default_factory=lambda: StageArgs(epochs=6, lr=3e-4))
    distill: StageArgs = field(default_factory=lambda: StageArgs(epochs=8, lr=1e-3))
    distill_args: DistillArgs = field(default_factory=DistillArgs)
    version: int = 1
    min_labelled: int = 40
    golden_batch_sizes: tuple[int, ...] = (1, 8)
    gate_ratio: float = 0.97
    gate_agreement: float = 0.99
    gate_rules_tolerance: float = 0.02  # stock macro-F1 the model may lag the fitted rules by
    # The shop gates (rules, classes): off only for smoke runs whose gate set is too small to
    # hold every class (the quick model bench); the report then says they were not applied.
    shop_gates: bool = True
    progress: bool = True
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    seed: int = 0  # weight initialisation and data order: the same data gives the same bundle
    tflite: bool = False  # also convert to model.tflite (needs the tflite-convert extra)
    class_weight_power: float = 0.5  # rare classes weigh (1/frequency)**power; 0: all alike
    guard_margin: float = 0.0  # the rules take a bucket when they beat the student by more
    guard_min_support: int = 20  # labels a bucket needs on the gate set to be judged alone

    @classmethod
    def recipe(
        cls,
        teacher: str = "small",
        student: str = "student",
        *,
        epochs: float = 1.0,
        progress: bool = True,
        **kw: Any,
    ) -> TrainConfig:
        """Learning rates and epochs that suit the chosen sizes (bigger models, gentler steps).

        ``epochs`` scales every stage's epochs; ``kw`` sets any other field.
        """
        t_lr = {"base": 1e-4, "medium": 2e-4, "small": 1e-3, "mini": 2e-3, "tiny": 3e-3}.get(
            teacher, 5e-4
        )
        s_lr = {"student-l": 1.5e-3, "student": 2e-3, "student-tiny": 3e-3}.get(student, 2e-3)

        def st(n: float, lr: float) -> StageArgs:
            return StageArgs(epochs=n * epochs, lr=lr, progress=progress)

        return cls(
            teacher=teacher,
            student=student,
            pretrain=st(2, t_lr),
            finetune=st(15, t_lr),
            distill=st(30, s_lr),
            progress=progress,
            **kw,
        )


@dataclass
class TrainResult:
    """What a run produced: the bundle (when gated through), scores, gates, report."""

    bundle: Path | None
    gates: Gates
    scores: dict[str, Score]
    report: Path
    facts: dict[str, Any] = field(default_factory=dict)
    teacher: ShelfBert | None = None
    student: ShelfBert | None = None


def check_data(
    train: Sequence[LabeledWindow], heldout: Sequence[LabeledWindow], min_labelled: int
) -> None:
    """Raise :class:`DataError` saying what is missing when the data cannot train a model."""
    for name, recs in (("training", train), ("held-out", heldout)):
        if not recs:
            raise DataError(f"{name} data is empty")
        n_i = sum(r.interest is not None for r in recs)
        n_s = sum(s is not None for r in recs for s in r.stock_labels)
        if n_i == 0 and n_s == 0:
            raise DataError(f"{name} data holds {len(recs)} windows but none is labelled")
        if n_i < min_labelled or n_s < min_labelled:
            raise DataError(
                f"{name} data too small: {n_i} interest labels and {n_s} stock labels, "
                f"need at least {min_labelled} of each"
            )


def golden_batches(
    backend: OnnxBackend, items: Sequence[Item], sizes: Sequence[int]
) -> list[dict[str, Any]]:
    """One golden batch per size: padded inputs and the probabilities the model gave."""
    out = []
    start = 0
    for size in sizes:
        chunk = [Encoded(it.ids, it.change_positions) for it in items[start : start + size]]
        start += size
        if len(chunk) < size:
            break
        ids, mask = pad_batch(chunk)
        pi, ps = run_encoded(backend, chunk)
        out.append(
            {
                "batch_size": size,
                "input_ids": ids,
                "attention_mask": mask,
                "change_positions": [list(e.change_positions) for e in chunk],
                "interest_probs": pi.round(6).tolist(),
                "stock_probs": [p.round(6).tolist() for p in ps],
            }
        )
    return out


def train_bundle(
    train: Sequence[LabeledWindow],
    heldout: Sequence[LabeledWindow],
    out: Path,
    *,
    signing_key: Ed25519PrivateKey,
    config: TrainConfig | None = None,
    teacher: ShelfBert | None = None,
) -> TrainResult:
    """Run the whole chain; the bundle lands at ``out/bundle`` only if every gate passes.

    ``teacher`` skips the teacher's training (a teacher trained before on the same data,
    to compare distillation settings).
    """
    cfg = config or TrainConfig()
    check_data(train, heldout, cfg.min_labelled)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok = ShelfTokenizer.default()
    tr_recs, ho_recs = split_records(train, tok), split_records(heldout, tok)
    tr, ho = encode_records(tr_recs, tok), encode_records(ho_recs, tok)
    labelled = [it for it in tr if it.interest >= 0 or any(s >= 0 for s in it.stock)]
    weights = class_weights(labelled, cfg.class_weight_power) if cfg.class_weight_power else None
    facts: dict[str, Any] = {
        "training windows": len(tr),
        "held-out windows": len(ho),
        "vocabulary": tok.vocab_size,
    }
    if train:  # the time range the windows cover (unit clock: epoch seconds, or sim seconds)
        span = [min(r.window.t_start for r in train), max(r.window.t_end for r in train)]
        facts["training from"], facts["training to"] = (
            datetime.fromtimestamp(t, UTC).isoformat() if t > 1e9 else t for t in span
        )
    timings: dict[str, float] = {}
    stages = tqdm(total=7, desc="train", disable=not cfg.progress, unit="stage")

    def stage(name: str) -> None:
        timings[name] = time.perf_counter()
        stages.set_postfix_str(name)

    stage("rules")
    rules = RuleBaseline.fit(tr_recs)
    stages.update()
    stage("pretrain")
    if teacher is None:
        teacher = build_model(
            cfg.teacher, vocab_size=tok.vocab_size, max_len=tok.max_len, checkpoint=cfg.checkpoint
        )
        if cfg.pretrain.epochs > 0:
            teacher = pretrain_mlm(teacher, tr, cfg.pretrain)
        stages.update()
        stage("finetune")
        teacher = finetune(teacher, labelled, cfg.finetune, class_weights=weights)
    else:
        stages.update()
        stage("finetune")
    stages.update()
    stage("distill")
    torch.manual_seed(cfg.seed + 1)  # the student's start does not depend on the teacher's run
    student = build_model(cfg.student, vocab_size=tok.vocab_size, max_len=tok.max_len)
    student = distill(student, teacher, tr, cfg.distill, cfg.distill_args, class_weights=weights)
    stages.update()
    stage("export")
    work = Path(tempfile.mkdtemp(prefix=".train-", dir=out))
    try:
        fp32, int8 = work / "student-fp32.onnx", work / MODEL_ONNX
        facts["exporter"] = export_onnx(student, fp32)
        quantize_int8(fp32, int8)
        stages.update()
        stage("evaluate")
        be32, be8 = OnnxBackend(fp32, threads=1), OnnxBackend(int8, threads=1)
        p_fp32 = predict_backend(be32, ho, batch_size=64)
        p_int8 = predict_backend(be8, ho, batch_size=1)
        p_rules = predict_rules(rules, ho_recs)
        guard = fit_guard(
            ho_recs,
            ho,
            p_int8,
            p_rules,
            rule_thresholds=rules.to_dict(),
            margin=cfg.guard_margin,
            min_support=cfg.guard_min_support,
        )
        scores = {
            "teacher": score(ho, predict_torch(teacher, ho)),
            "student fp32": score(ho, p_fp32),
            "student int8": score(ho, p_int8),
            "unit (int8 + guard)": score(ho, guarded(guard, ho_recs, p_int8, p_rules)),
            "rules": score(ho, p_rules),
        }
        agree = agreement(p_fp32, p_int8)
        gates = metric_gates(
            scores["teacher"],
            scores["student int8"],
            agree,
            ratio=cfg.gate_ratio,
            min_agreement=cfg.gate_agreement,
        )
        trained = trained_classes(
            {
                "interest": [it.interest for it in labelled],
                "stock": [s for it in labelled for s in it.stock],
            }
        )
        if cfg.shop_gates:
            shop = shop_gates(
                scores["unit (int8 + guard)"],
                scores["rules"],
                trained,
                tolerance=cfg.gate_rules_tolerance,
            )
            gates.checks.extend(shop.checks)
        else:
            facts["shop gates"] = "not applied (smoke run: gate set too small to hold every class)"
        stages.update()
        facts.update(
            {
                "teacher": f"{cfg.teacher} ({parameter_count(teacher) / 1e6:.2f} M parameters)",
                "student": f"{cfg.student} ({parameter_count(student) / 1e6:.3f} M parameters)",
                "int8 model bytes": int8.stat().st_size,
                "fp32 model bytes": fp32.stat().st_size,
                "int8/fp32 agreement": round(agree, 4),
                "rule thresholds": rules.to_dict(),
                "distillation": cfg.distill_args,
                "buckets the rules decide": guard.ruled(),
            }
        )
        stage("bundle")
        bundle_path: Path | None = None
        if gates.passed:
            files = {MODEL_ONNX: int8}
            if cfg.tflite:
                lite = work / MODEL_TFLITE
                if export_tflite(student, lite):
                    files[MODEL_TFLITE] = lite
                else:
                    log.warning("litert-torch is not installed: bundle without model.tflite")
            bundle_path = _gated_bundle(out, files, tok, ho, scores, cfg, signing_key, gates, guard)
        stages.update()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        stages.close()
    ends = [*list(timings.values())[1:], time.perf_counter()]
    facts["stage seconds"] = {
        k: round(e - s, 1) for (k, s), e in zip(timings.items(), ends, strict=True)
    }
    if bundle_path is not None:
        facts["bundle bytes"] = sum(p.stat().st_size for p in bundle_path.iterdir())
    report = write_report(out, scores, gates, facts)
    return TrainResult(bundle_path, gates, scores, report, facts, teacher, student)


def _gated_bundle(
    out: Path,
    files: dict[str, Path],
    tok: ShelfTokenizer,
    ho: Sequence[Item],
    scores: dict[str, Score],
    cfg: TrainConfig,
    key: Ed25519PrivateKey,
    gates: Gates,
    guard: Guard,
) -> Path | None:
    golden = golden_batches(OnnxBackend(files[MODEL_ONNX], threads=1), ho, cfg.golden_batch_sizes)
    metrics = {
        n: {h: round(s.head(h).macro_f1, 4) for h in ("interest", "stock")}
        for n, s in scores.items()
    }
    candidate = out / ".bundle-candidate"
    write_bundle(
        candidate,
        files=files,
        tokenizer=tok,
        golden=golden,
        version=cfg.version,
        model={
            "vocab_size": tok.vocab_size,
            "max_len": tok.max_len,
            "inputs": ["input_ids", "attention_mask"],
            "outputs": ["interest_logits", "stock_logits"],
            "student": cfg.student,
            "quantization": "dynamic int8 (weights int8 per channel, activations uint8 per batch)",
        },
        metrics=metrics,
        signing_key=key,
        guard=guard,
    )
    try:
        ModelRuntime(trusted_keys=[key.public_key()]).load(candidate)
        gates.add(
            "golden outputs reproduce",
            True,
            f"{len(golden)} batches, sizes {cfg.golden_batch_sizes}",
        )
    except BundleError as err:
        gates.add("golden outputs reproduce", False, str(err))
        shutil.rmtree(candidate, ignore_errors=True)
        return None
    dest = out / "bundle"
    swap_dir(candidate, dest)
    return dest
