"""End to end through ``shelfsense cloud train``: a tiny teacher and student, gates, a bundle.

Kept lean for CI (a few hundred windows, tiny models, one torch thread); the full-size
run with held-out figures is ``tests/bench/bench_model.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.bundle import load_public_key
from models.dataset import LabeledWindow, write_jsonl
from models.runtime import ModelRuntime
from shelfsense.cli import main
from tests.models.factory import make_records

TINY = [
    "--teacher",
    "tiny",
    "--student",
    "student",
    "--epochs",
    "0.8",
    "--threads",
    "1",
    "--no-progress",
]


@pytest.mark.slow(seconds=30)
def test_cloud_train_produces_a_gated_bundle(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", make_records(300, seed=21))
    write_jsonl(tmp_path / "held.jsonl", make_records(200, seed=22))
    out = tmp_path / "out"
    code = main(
        [
            "cloud",
            "train",
            "--data",
            str(tmp_path / "train.jsonl"),
            "--heldout",
            str(tmp_path / "held.jsonl"),
            "--out",
            str(out),
            "--version",
            "4",
            *TINY,
        ]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert code == 0, metrics["gates"]
    assert all(g["passed"] for g in metrics["gates"])
    assert {g["name"].split(" ")[0] for g in metrics["gates"]} >= {"interest", "stock", "golden"}
    scores = metrics["scores"]
    contenders = {"teacher", "student fp32", "student int8", "unit (int8 + guard)", "rules"}
    assert set(scores) == contenders
    assert scores["teacher"]["interest"]["macro_f1"] > 0.6
    assert len(list(out.glob("confusion-*.png"))) == 2 * len(contenders)
    assert "| student int8 |" in (out / "report.md").read_text()
    key = load_public_key((out / "trusted-key.pem").read_bytes())
    rt = ModelRuntime(trusted_keys=[key])
    assert rt.load(out / "bundle").version == 4
    assert rt.bundle is not None and rt.bundle.manifest["metrics"]["teacher"]["interest"] > 0.6
    guard = rt.bundle.manifest["guard"]
    assert set(guard["heads"]) == {"interest", "stock"} and guard["rules"]["stock"]
    for per in guard["heads"].values():  # the verdict of every judged bucket follows its scores
        for v in per.values():
            assert v["decides"] in ("model", "rules") and 0 <= v.get("student", 0) <= 1
            if "support" in v and v["support"] >= guard["min_support"]:
                assert (v["decides"] == "rules") == (v["rules"] > v["student"] + guard["margin"])
    ruled = {h: set(b) & set(guard["heads"][h]) for h, b in rt.guard.ruled().items()}
    assert ruled == {
        h: {b for b, v in per.items() if v["decides"] == "rules"}
        for h, per in guard["heads"].items()
    }


def test_too_little_data_fails_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_jsonl(tmp_path / "few.jsonl", make_records(30, seed=1))
    code = main(
        [
            "cloud",
            "train",
            "--data",
            str(tmp_path / "few.jsonl"),
            "--out",
            str(tmp_path / "o"),
            *TINY,
        ]
    )
    assert code == 2
    assert "too small" in capsys.readouterr().err


def test_unlabelled_data_fails_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = [LabeledWindow(r.window) for r in make_records(200, seed=2)]
    write_jsonl(tmp_path / "bare.jsonl", bare)
    code = main(
        [
            "cloud",
            "train",
            "--data",
            str(tmp_path / "bare.jsonl"),
            "--out",
            str(tmp_path / "o"),
            *TINY,
        ]
    )
    assert code == 2
    assert "none is labelled" in capsys.readouterr().err


def test_missing_data_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "cloud",
            "train",
            "--data",
            str(tmp_path / "nope.jsonl"),
            "--out",
            str(tmp_path / "o"),
            *TINY,
        ]
    )
    assert code == 2
    assert "nope.jsonl" in capsys.readouterr().err
