"""The training report: a markdown table of every contender, F1 per class, confusion PNGs.

Written next to the bundle as ``report.md``, ``metrics.json`` and
``confusion-<contender>-<head>.png`` (matplotlib, Agg backend, no display needed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.labels import HEADS
from models.train.evaluate import Score
from models.train.gates import Gates


def confusion_png(path: Path, matrix: list[list[int]], labels: tuple[str, ...], title: str) -> None:
    """Draw one confusion matrix (rows true, columns predicted) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.8), dpi=90)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = max((max(r) for r in matrix), default=0) or 1
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                color="white" if v > top / 2 else "black",
                fontsize=8,
            )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(
    out: Path,
    scores: Mapping[str, Score],
    gates: Gates,
    facts: Mapping[str, Any],
) -> Path:
    """Write ``report.md``, ``metrics.json`` and the PNGs into ``out``; returns the report path."""
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Training report", "", "## Held-out macro-F1", ""]
    lines += ["| contender | interest | stock |", "| --- | --- | --- |"]
    for name, s in scores.items():
        lines.append(f"| {name} | {s.interest.macro_f1:.3f} | {s.stock.macro_f1:.3f} |")
    for head, labels in HEADS.items():
        lines += ["", f"## F1 per class: {head}", ""]
        lines.append("| contender | " + " | ".join(labels) + " |")
        lines.append("| --- " * (len(labels) + 1) + "|")
        for name, s in scores.items():
            pc = s.head(head).per_class
            cells = [f"{pc[lab]:.2f}" if lab in pc else "-" for lab in labels]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
            png = out / f"confusion-{name.replace(' ', '-')}-{head}.png"
            confusion_png(png, s.head(head).confusion, labels, f"{name}: {head}")
    lines += ["", "## Gates", ""]
    lines += [f"- [{'x' if ok else ' '}] {n}: {d}" for n, ok, d in gates.checks]
    lines += ["", "## Facts", ""]
    lines += [f"- {k}: {v}" for k, v in facts.items()]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    metrics = {
        "scores": {
            n: {
                h: {
                    "macro_f1": s.head(h).macro_f1,
                    "per_class": s.head(h).per_class,
                    "n": s.head(h).n,
                    "labels": list(HEADS[h]),
                    "confusion": s.head(h).confusion,
                }
                for h in HEADS
            }
            for n, s in scores.items()
        },
        "gates": [{"name": n, "passed": ok, "detail": d} for n, ok, d in gates.checks],
        "facts": dict(facts),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=str), encoding="utf-8")
    return path
