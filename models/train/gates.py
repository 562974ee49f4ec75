"""Release gates: whether a trained student may become a bundle (pure; no I/O).

A bundle is produced only if, on the held-out set, the int8 student's macro-F1 is at
least ``ratio`` x the teacher's for each head, the int8 student agrees with the fp32
student on at least ``min_agreement`` of the windows, and the golden outputs reproduce
when the written bundle is loaded by the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.train.evaluate import Score


@dataclass
class Gates:
    """Outcome of every gate: ``(name, passed, detail)``."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(ok for _, ok, _ in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        """Record one check."""
        self.checks.append((name, ok, detail))

    def failures(self) -> list[str]:
        """``name: detail`` of each failed check."""
        return [f"{n}: {d}" for n, ok, d in self.checks if not ok]


def metric_gates(
    teacher: Score,
    int8: Score,
    agreement: float,
    *,
    ratio: float = 0.97,
    min_agreement: float = 0.99,
) -> Gates:
    """The accuracy and agreement gates."""
    g = Gates()
    for head in ("interest", "stock"):
        t, s = teacher.head(head).macro_f1, int8.head(head).macro_f1
        g.add(
            f"{head} int8 >= {ratio:.0%} of teacher",
            s >= ratio * t,
            f"int8 {s:.3f} vs teacher {t:.3f} (ratio {s / t if t else float('inf'):.3f})",
        )
    g.add(
        f"int8 agrees with fp32 on >= {min_agreement:.0%}",
        agreement >= min_agreement,
        f"agreement {agreement:.4f}",
    )
    return g
