"""Model benchmark: held-out accuracy of every contender, latency, bundle size, memory.

1. **Data** from the real pipeline (``edge.dataset``: simulator -> signals -> camera ->
   windows, truth only as labels). Training: scenarios ``busy`` (seeds 1-8), ``noisy``
   and ``faulty`` (seeds 1-4), ``mixed`` (seeds 1-8: other SKUs and wiring than
   ``busy``, longer and harder handling) and ``rush`` (seeds 1-4: crowds, misplacements,
   faults), one simulated hour each. Held out: scenario ``heldout`` — other SKUs and unit
   weights, channel wiring, noise and traffic than any training scenario — seeds
   101-104, one hour each; the gate set is these and two days of ``faulty`` (seeds
   101-102: the held-out store has no cell faults, and the gates refuse a student they
   cannot judge on ``sensor_fault``); and the busy held-out store ``crowded`` (other
   SKUs, weights and wiring again, 330 arrivals/h, 9 % misplacements, faults) seeds
   201-203, never trained or gated on. ``--quick``: ``busy`` seeds 1-2, 15 minutes each;
   ``heldout`` seed 101 and ``crowded`` seed 201, 18 minutes each (a smoke run: its
   gate set is too small to judge crowded buckets, which the guard then leaves to
   the rules for stock). Runs are generated two at a time and cached
   as JSONL (``--cache``, in a folder named by a digest of the code that shapes windows,
   so a change to it makes them again). ``--seed`` sets the training seed (weights, data
   order). Progress lines go to stderr.
2. **Training** through :func:`models.train.pipeline.train_bundle`: teacher ``small``
   (4 x 256) and student ``student`` (2 x 128) (``--quick``: ``tiny`` / ``student-tiny``),
   every stage at half the recipe's epochs, classes weighted by inverse square-root
   frequency, distilled with soft targets, hard labels and TinyBERT hidden-state and
   attention transfer; with ``--compare``, the same teacher distilled again without
   transfer, for comparison.
   Macro-F1 per head on the held-out store for teacher, student fp32, student int8,
   what a unit emits (int8 + the bundle's guard, ``models.guard``) and the fitted rule
   baseline; the gates. Per crowding bucket (changes per window 1-2, 3-4, >= 5;
   shoppers seen 1, >= 2), macro-F1 of each head for teacher, int8, unit and rules on
   ``heldout`` and on ``crowded``, and the buckets where the guard lets the rules decide.
3. **Latency** at batch 1, one thread, the same held-out windows: the int8 student on
   onnxruntime (the unit's code path), the fp32 student on onnxruntime, the trained
   teacher in PyTorch and a BERT-base-shaped teacher (12 x 768, random init, from
   config) in PyTorch. Medians per window and ratios against the int8 student.
   Masked decoding (the physics table, ``models.physics``) against the plain argmax on
   the same int8 student and held-out windows: stock macro-F1 of each, how many changes
   the plain argmax gives a label the measured change forbids, and the median ms per
   window of each decoding (model run included); measured even when the gates refuse
   the student (it is then exported and quantized here).
4. **Footprint**: bundle bytes; peak RSS of a fresh process (torch blocked) that loads
   the bundle and classifies 10,000 windows (``--quick``: 2,000).

Run: ``.venv/bin/python -m tests.bench.bench_model [--quick]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class BenchResult:
    """Every figure of one run."""

    data: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    transfer: dict[str, dict[str, float]] = field(default_factory=dict)
    gates: list[tuple[str, bool, str]] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)
    speedup: dict[str, float] = field(default_factory=dict)
    bundle_bytes: int = 0
    peak_rss_mb: float = 0.0
    classified: int = 0
    sizes: dict[str, str] = field(default_factory=dict)
    decoding: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, dict[str, dict[str, dict[str, tuple[float, int]]]]] = field(
        default_factory=dict
    )  # store -> contender -> head -> bucket -> (macro-F1, labels)
    ruled: dict[str, list[str]] = field(default_factory=dict)
    store_scores: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


def note(msg: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(f"[bench_model {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _one_run(args: tuple[str, int, float, str]) -> str:
    scenario, seed, hours, path = args
    from edge.dataset import simulate_dataset
    from models.dataset import write_jsonl

    records, _ = simulate_dataset(scenario, seed, hours * 3600.0)
    write_jsonl(Path(path), records)
    return path


WINDOW_SOURCES = ("edge", "firmware_bridge/sim", "models")
"""Code that shapes the windows: a cached run made by other code is made again."""


def source_digest() -> str:
    """Short digest of every Python file under :data:`WINDOW_SOURCES`."""
    h = hashlib.sha256()
    for top in WINDOW_SOURCES:
        for p in sorted((ROOT / top).rglob("*.py")):
            h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:12]


def dataset(runs: list[tuple[str, int, float]], cache: Path) -> list[Any]:
    """Windows of the given runs, generated (two at a time) unless cached for this code."""
    from models.dataset import read_jsonl

    cache = cache / source_digest()
    cache.mkdir(parents=True, exist_ok=True)
    paths = [cache / f"{sc}-{seed}-{hours:g}h.jsonl" for sc, seed, hours in runs]
    todo = [
        (sc, seed, hours, str(p))
        for (sc, seed, hours), p in zip(runs, paths, strict=True)
        if not p.exists()
    ]
    if todo:
        note(f"data: simulating {len(todo)} of {len(runs)} runs (two at a time) into {cache}")
        with ProcessPoolExecutor(max_workers=2) as pool:
            for i, done in enumerate(pool.map(_one_run, todo), 1):
                note(f"data: {i}/{len(todo)} {Path(done).name}")
    out: list[Any] = []
    for p in paths:
        out += read_jsonl(p)
    return out


def _median_ms(fn: Any, items: list[Any]) -> float:
    times = []
    for it in items:
        t = time.perf_counter()
        fn(it)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def latency(
    teacher: Any, bundle: Path, fp32: Path | None, items: list[Any], n_base: int
) -> dict[str, float]:
    """Median ms per window at batch 1 on one thread, for each contender."""
    import torch

    from models.runtime.classifier import run_encoded
    from models.runtime.onnx import OnnxBackend
    from models.tokens import Encoded, ShelfTokenizer
    from models.train.model import ShelfBert, bert_config

    torch.set_num_threads(1)
    encs = [Encoded(it.ids, it.change_positions) for it in items]
    int8 = OnnxBackend(bundle / "model.onnx", threads=1)
    out = {}
    for be in (int8,):
        run_encoded(be, encs[:1])
    out["student int8 (onnxruntime)"] = _median_ms(lambda e: run_encoded(int8, [e]), encs)
    if fp32 is not None:
        f32 = OnnxBackend(fp32, threads=1)
        out["student fp32 (onnxruntime)"] = _median_ms(lambda e: run_encoded(f32, [e]), encs)

    def torch_fn(model: Any) -> Any:
        def run(e: Encoded) -> None:
            ids = torch.tensor([e.ids])
            with torch.no_grad():
                model(input_ids=ids, attention_mask=torch.ones_like(ids))

        return run

    teacher = teacher.eval()
    out["trained teacher (PyTorch)"] = _median_ms(torch_fn(teacher), encs)
    tok = ShelfTokenizer.default()
    base = ShelfBert(bert_config("base", vocab_size=tok.vocab_size, max_len=tok.max_len)).eval()
    torch_fn(base)(encs[0])
    out["BERT-base teacher (PyTorch, 12x768)"] = _median_ms(torch_fn(base), encs[:n_base])
    return out


def decoding(model: Path, items: list[Any]) -> dict[str, float]:
    """Masked vs plain-argmax stock decoding of one int8 model: F1, forbidden labels, latency."""
    import numpy as np

    from models.runtime.classifier import run_logits
    from models.runtime.decoding import decode_stock, decode_unmasked
    from models.runtime.onnx import OnnxBackend
    from models.tokens import Encoded
    from models.train.evaluate import predict_backend, score

    be = OnnxBackend(model, threads=1)
    masked = predict_backend(be, items, masked=True)
    plain = predict_backend(be, items, masked=False)
    forbidden = sum(
        int(not it.stock_mask()[k, int(lab)])
        for it, labs in zip(items, plain.stock, strict=True)
        for k, lab in enumerate(labs)
    )
    with_changes = [it for it in items if it.change_positions]
    encs = [(Encoded(it.ids, it.change_positions), it.stock_mask()) for it in with_changes]

    def run_masked(x: tuple[Any, Any]) -> None:
        _, ls = run_logits(be, [x[0]])
        decode_stock(ls[0], x[1])

    def run_plain(x: tuple[Any, Any]) -> None:
        _, ls = run_logits(be, [x[0]])
        decode_unmasked(ls[0])

    run_masked(encs[0])
    ms_plain, ms_masked = [], []
    for _ in range(3):  # interleaved rounds, so drift in the machine's load hits both alike
        ms_plain.append(_median_ms(run_plain, encs))
        ms_masked.append(_median_ms(run_masked, encs))
    n_changes = sum(len(it.change_positions) for it in items)
    return {
        "stock macro-F1, masked": score(items, masked).stock.macro_f1,
        "stock macro-F1, plain argmax": score(items, plain).stock.macro_f1,
        "changes": float(n_changes),
        "forbidden labels, plain argmax": float(forbidden),
        "forbidden labels, masked": float(
            sum(
                int(not it.stock_mask()[k, int(lab)])
                for it, labs in zip(items, masked.stock, strict=True)
                for k, lab in enumerate(labs)
            )
        ),
        "ms per window, masked": float(np.median(ms_masked)),
        "ms per window, plain argmax": float(np.median(ms_plain)),
    }


def by_bucket(
    int8: Path, teacher: Any, rules: Any, guard: Any, records: list[Any]
) -> tuple[dict[str, dict[str, dict[str, tuple[float, int]]]], dict[str, dict[str, float]]]:
    """Per contender: per-bucket macro-F1 of each head, and the whole-set macro-F1."""
    from models.runtime.onnx import OnnxBackend
    from models.tokens import ShelfTokenizer
    from models.train.buckets import guarded, per_bucket
    from models.train.data import encode_records, split_records
    from models.train.evaluate import predict_backend, predict_rules, predict_torch

    tok = ShelfTokenizer.default()
    recs = split_records(records, tok)
    items = encode_records(recs, tok)
    p8 = predict_backend(OnnxBackend(int8, threads=1), items)
    pr = predict_rules(rules, recs)
    preds = {
        "teacher": predict_torch(teacher, items),
        "student int8": p8,
        "unit (int8 + guard)": guarded(guard, recs, p8, pr),
        "rules": pr,
    }
    per = {n: per_bucket(recs, items, p) for n, p in preds.items()}
    whole = {n: {h: v[h]["all"][0] for h in ("interest", "stock")} for n, v in per.items()}
    return per, whole


RSS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.modules["torch"] = None
    sys.modules["transformers"] = None
    from models.bundle import load_public_key
    from models.dataset import read_jsonl
    from models.runtime import ModelRuntime
    bundle, key, data, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    windows = [r.window for r in read_jsonl(data)]
    rt = ModelRuntime(trusted_keys=[load_public_key(open(key, "rb").read())], threads=1)
    rt.load(bundle)
    done = 0
    while done < n:
        chunk = windows[: min(len(windows), n - done)]
        rt.classify(chunk, batch_size=1)
        done += len(chunk)
    # VmHWM belongs to this process image (ru_maxrss would carry the forking parent's peak)
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
    print(json.dumps({"peak_rss_kb": int(hwm.split()[1]), "classified": done}))
    """
)


def peak_rss(bundle: Path, key: Path, data: Path, n: int) -> tuple[float, int]:
    """Peak RSS (MB) of a fresh process that loads ``bundle`` and classifies ``n`` windows."""
    res = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(bundle), str(key), str(data), str(n)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1200,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "ORT_DISABLE_TELEMETRY": "1"},
    )
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    d = json.loads(res.stdout.strip().splitlines()[-1])
    return d["peak_rss_kb"] / 1024, d["classified"]


def run(
    quick: bool, cache: Path, out_dir: Path, seed: int = 0, compare: bool = False
) -> BenchResult:
    """The whole benchmark."""
    from models.bundle import generate_key, public_key_pem
    from models.dataset import write_jsonl
    from models.tokens import ShelfTokenizer
    from models.train.data import encode_records, split_records
    from models.train.fit import DistillArgs
    from models.train.pipeline import TrainConfig, train_bundle

    if quick:
        train_runs = [("busy", 1, 0.25), ("busy", 2, 0.25)]
        held_runs = [("heldout", 101, 0.3)]
        crowd_runs = [("crowded", 201, 0.3)]
        fault_runs = []
    else:
        train_runs = [
            *[("busy", s, 1.0) for s in range(1, 9)],
            *[("noisy", s, 1.0) for s in range(1, 5)],
            *[("faulty", s, 1.0) for s in range(1, 5)],
            *[("mixed", s, 1.0) for s in range(1, 9)],
            *[("rush", s, 1.0) for s in range(1, 5)],
        ]
        held_runs = [("heldout", s, 1.0) for s in (101, 102, 103, 104)]
        crowd_runs = [("crowded", s, 1.0) for s in (201, 202, 203)]
        # the held-out store has no cell faults; the gates refuse a student they cannot
        # judge on sensor_fault, so the gate set adds two days of the faulty store
        fault_runs = [("faulty", s, 1.0) for s in (101, 102)]
    r = BenchResult()
    t0 = time.perf_counter()
    train = dataset(train_runs, cache)
    held = dataset(held_runs, cache)
    crowd = dataset(crowd_runs, cache)
    gate = held + dataset(fault_runs, cache) if fault_runs else held
    r.data = {
        "training windows": len(train),
        "held-out windows": len(held),
        "gate set windows": len(gate),
        "crowded windows": len(crowd),
        "training runs": ", ".join(f"{a}/{b}/{c:g}h" for a, b, c in train_runs),
        "held-out runs": ", ".join(f"{a}/{b}/{c:g}h" for a, b, c in held_runs),
        "crowded runs": ", ".join(f"{a}/{b}/{c:g}h" for a, b, c in crowd_runs),
        "gate set": "the held-out runs" + "".join(f", {a}/{b}/{c:g}h" for a, b, c in fault_runs),
        "data seconds": round(time.perf_counter() - t0, 1),
        "training seed": seed,
    }
    teacher_p, student_p = ("tiny", "student-tiny") if quick else ("small", "student")
    key = generate_key()
    common = {"progress": not quick, "threads": 1, "min_labelled": 5 if quick else 40, "seed": seed}
    if quick:  # 26 held-out windows cannot hold every stock class: the shop gates would refuse
        common["shop_gates"] = False
        r.data["shop gates"] = "off (quick size: the gate set is too small to judge every class)"
    transfer = DistillArgs(hidden_weight=1.0, attention_weight=1.0)
    epochs = 3.0 if quick else 0.5
    cfg = TrainConfig.recipe(teacher_p, student_p, epochs=epochs, distill_args=transfer, **common)
    note(f"training on {len(train)} windows, gated on {len(gate)} (teacher {teacher_p})")
    res = train_bundle(train, gate, out_dir / "kd+transfer", signing_key=key, config=cfg)
    note("trained; scoring buckets, decoding, latency and memory")
    r.scores = {
        n: {h: s.head(h).macro_f1 for h in ("interest", "stock")} for n, s in res.scores.items()
    }
    r.gates = res.gates.checks
    r.sizes = {"teacher": str(res.facts["teacher"]), "student": str(res.facts["student"])}
    if compare:  # the same teacher distilled without transfer
        kcfg = TrainConfig.recipe(teacher_p, student_p, epochs=epochs, **common)
        res_k = train_bundle(
            train, gate, out_dir / "kd", signing_key=key, config=kcfg, teacher=res.teacher
        )
        r.transfer = {
            "soft targets + labels": {
                h: res_k.scores["student int8"].head(h).macro_f1 for h in ("interest", "stock")
            },
            "+ hidden-state and attention transfer": r.scores["student int8"],
        }
    tok = ShelfTokenizer.default()
    items = encode_records(split_records(held, tok), tok)
    int8_model: Path | None = None
    if res.bundle is not None:
        int8_model = res.bundle / "model.onnx"
    elif res.student is not None:  # refused by the gates: measure the decoding all the same
        from models.train.export import export_onnx, quantize_int8

        fp32_path, int8_model = out_dir / "refused-fp32.onnx", out_dir / "refused-int8.onnx"
        export_onnx(res.student, fp32_path)
        quantize_int8(fp32_path, int8_model)
    if int8_model is not None:
        from models.rules import RuleBaseline
        from models.runtime.onnx import OnnxBackend
        from models.train.buckets import fit_guard
        from models.train.evaluate import predict_backend, predict_rules

        r.decoding = decoding(int8_model, items)
        rules = RuleBaseline.from_dict(res.facts["rule thresholds"])
        if res.bundle is not None:
            from models.bundle import verify_bundle

            guard = verify_bundle(res.bundle, trusted_keys=[key.public_key()]).guard
        else:  # the guard the pipeline fitted on the gate set, fitted again
            gate_recs = split_records(gate, tok)
            gate_items = encode_records(gate_recs, tok)
            guard = fit_guard(
                gate_recs,
                gate_items,
                predict_backend(OnnxBackend(int8_model, threads=1), gate_items),
                predict_rules(rules, gate_recs),
                rule_thresholds=rules.to_dict(),
                min_support=cfg.guard_min_support,
            )
        r.ruled = guard.ruled()
        for store, recs in (("heldout", held), ("crowded", crowd)):
            per, whole = by_bucket(int8_model, res.teacher, rules, guard, recs)
            r.buckets[store] = per
            r.store_scores[store] = whole
    if res.bundle is None:
        return r
    r.bundle_bytes = sum(p.stat().st_size for p in res.bundle.iterdir())
    n_lat = 100 if quick else 300
    fp32 = None
    r.latency_ms = latency(res.teacher, res.bundle, fp32, items[:n_lat], 20 if quick else 100)
    base_int8 = r.latency_ms["student int8 (onnxruntime)"]
    r.speedup = {k: v / base_int8 for k, v in r.latency_ms.items()}
    keyf = out_dir / "trusted.pem"
    keyf.write_bytes(public_key_pem(key))
    held_file = out_dir / "held.jsonl"
    write_jsonl(held_file, held)
    r.peak_rss_mb, r.classified = peak_rss(res.bundle, keyf, held_file, 2000 if quick else 10_000)
    return r


def table(r: BenchResult) -> str:
    """The figures as markdown."""
    lines = (
        ["## Data", ""]
        + [f"- {k}: {v}" for k, v in r.data.items()]
        + [f"- {k}: {v}" for k, v in r.sizes.items()]
    )
    lines += [
        "",
        "## Gate set macro-F1 (what the gates judge)",
        "",
        "| contender | interest | stock |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {n} | {s['interest']:.3f} | {s['stock']:.3f} |" for n, s in r.scores.items()]
    if r.scores:
        t, s8, ru = r.scores["teacher"], r.scores["student int8"], r.scores["rules"]
        lines += [
            "",
            f"- int8 / teacher: interest {s8['interest'] / max(t['interest'], 1e-9):.3f}, "
            f"stock {s8['stock'] / max(t['stock'], 1e-9):.3f} (gate >= 0.97)",
            f"- int8 - rules, interest macro-F1: {100 * (s8['interest'] - ru['interest']):+.1f} points (target >= +10)",
        ]
    titles = {
        "heldout": "Held-out store (other SKUs, weights, wiring; never trained on)",
        "crowded": "Crowded store (never trained or gated on)",
    }
    for store, scores in r.store_scores.items():
        lines += [
            "",
            f"## {titles.get(store, store)}, macro-F1",
            "",
            "| contender | interest | stock |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {n} | {s['interest']:.3f} | {s['stock']:.3f} |" for n, s in scores.items()]
    lines += bucket_lines(r)
    lines += ["", "## Gates", ""] + [f"- [{'x' if ok else ' '}] {n}: {d}" for n, ok, d in r.gates]
    if r.transfer:
        lines += ["", "## Distillation variants (student int8, held-out macro-F1)", ""]
        lines += ["| variant | interest | stock |", "| --- | --- | --- |"]
        lines += [
            f"| {n} | {s['interest']:.3f} | {s['stock']:.3f} |" for n, s in r.transfer.items()
        ]
    if r.decoding:
        d = r.decoding
        lines += [
            "",
            "## Stock decoding: physics mask vs plain argmax (same int8 student, held-out)",
            "",
            "| decoding | stock macro-F1 | labels the change forbids | median ms per window |",
            "| --- | ---: | ---: | ---: |",
            f"| physics-mask-v1 | {d['stock macro-F1, masked']:.3f} | "
            f"{d['forbidden labels, masked']:.0f} of {d['changes']:.0f} | "
            f"{d['ms per window, masked']:.3f} |",
            f"| plain argmax | {d['stock macro-F1, plain argmax']:.3f} | "
            f"{d['forbidden labels, plain argmax']:.0f} of {d['changes']:.0f} | "
            f"{d['ms per window, plain argmax']:.3f} |",
            "",
            f"- latency masked / plain: "
            f"{d['ms per window, masked'] / max(d['ms per window, plain argmax'], 1e-9):.3f}",
        ]
    if r.latency_ms:
        lines += ["", "## Latency, batch 1, one thread (median ms per window)", ""]
        lines += ["| model | median ms | x int8 student |", "| --- | --- | --- |"]
        lines += [f"| {n} | {v:.3f} | {r.speedup[n]:.1f} |" for n, v in r.latency_ms.items()]
        lines += [
            "",
            "## Footprint",
            "",
            f"- bundle: {r.bundle_bytes} bytes ({r.bundle_bytes / 2**20:.2f} MB, limit 5 MB)",
        ]
        lines += [
            f"- peak RSS loading the bundle and classifying {r.classified} windows: {r.peak_rss_mb:.1f} MB (limit 150 MB)"
        ]
    return "\n".join(lines)


SHOWN_BUCKETS = ("changes:1-2", "changes:3-4", "changes:5+", "shoppers:1", "shoppers:2+")


def bucket_lines(r: BenchResult) -> list[str]:
    """Per-bucket macro-F1 tables, one per store and head."""
    lines: list[str] = []
    if r.ruled:
        lines += [
            "",
            "## Guard: buckets where the fitted rules decide",
            "",
            *[f"- {h}: {', '.join(b) or 'none'}" for h, b in r.ruled.items()],
        ]
    for store, per in r.buckets.items():
        names = list(per)
        for head in ("stock", "interest"):
            lines += [
                "",
                f"## {store}: {head} macro-F1 per crowding bucket",
                "",
                "| bucket | labels | " + " | ".join(names) + " |",
                "| --- | ---: | " + " | ".join("---:" for _ in names) + " |",
            ]
            for b in SHOWN_BUCKETS:
                got = [per[n][head].get(b) for n in names]
                if got[0] is None:
                    continue
                cells = " | ".join(f"{g[0]:.3f}" if g else "-" for g in got)
                lines.append(f"| {b.replace(':', ' ')} | {got[0][1]} | {cells} |")
    return lines


def main(argv: list[str] | None = None) -> BenchResult:
    """Run, print the table, return the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small data, tiny models")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "shelfsense-bench-cache",
        help="dataset cache folder (outside the repository)",
    )
    ap.add_argument("--out", type=Path, help="keep bundles and reports here")
    ap.add_argument("--seed", type=int, default=0, help="training seed (weights, data order)")
    ap.add_argument(
        "--compare", action="store_true", help="also distil without hidden/attention transfer"
    )
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = a.out or Path(tmp)
        r = run(a.quick, a.cache, out, a.seed, a.compare)
        print(table(r))
    return r


if __name__ == "__main__":
    main()
