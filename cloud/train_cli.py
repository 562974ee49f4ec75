"""``shelfsense cloud train``: labelled windows in, a gated and signed model bundle out.

Reads JSON-lines windows (``models.dataset``, ``--data``) or the windows units uploaded
to the cloud store with the labels it holds (``--from-store``, :mod:`cloud.training_data`;
unlabelled windows there serve the masked-token pretraining), trains the teacher, distils the student, exports and quantizes it, applies the gates and
writes ``<out>/bundle`` plus ``<out>/report.md`` with metrics, per-class F1 and confusion
matrices. Without ``--heldout`` the last ``--heldout-fraction`` of the windows (in time
order; for the store, the most recent by wall time) is held out. Without ``--signing-key`` a new key is made and saved beside the
bundle (fine for a trial; the fleet's registry signs with its own key).

Only the handler imports the training stack, so listing commands on a unit stays light.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def register(cloud_sub: Any, db_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``train`` to the ``cloud`` subcommands (``db_args`` adds the store options)."""
    p = cloud_sub.add_parser(
        "train", help="train teacher and student on labelled windows, gate, write a bundle"
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, action="append", help="JSONL windows (repeatable)")
    source.add_argument(
        "--from-store",
        action="store_true",
        help="the windows and labels in the cloud store (--database-url / --config)",
    )
    db_args(p)
    p.add_argument(
        "--heldout", type=Path, action="append", help="JSONL held-out windows (repeatable)"
    )
    p.add_argument(
        "--heldout-fraction", type=float, default=0.2, help="held out when --heldout is absent"
    )
    p.add_argument("--out", type=Path, required=True, help="folder for bundle/ and the report")
    p.add_argument("--teacher", default="small", help="teacher preset: base|medium|small|mini|tiny")
    p.add_argument(
        "--student", default="student", help="student preset: student-l|student|student-tiny"
    )
    p.add_argument(
        "--checkpoint", type=Path, help="start the teacher from this local checkpoint folder"
    )
    p.add_argument("--epochs", type=float, default=1.0, help="scale every stage's epochs by this")
    p.add_argument("--version", type=int, default=1, help="bundle version (monotonic integer)")
    p.add_argument("--signing-key", type=Path, help="PEM Ed25519 private key to sign the bundle")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument(
        "--transfer", action="store_true", help="add hidden-state and attention transfer"
    )
    p.add_argument("--min-labelled", type=int, default=40, help="labels needed per head and split")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _read(paths: list[Path]) -> list[Any]:
    from models.dataset import read_jsonl

    out: list[Any] = []
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such data file")
        out += read_jsonl(path)
    return out


def _from_store(args: argparse.Namespace) -> list[Any]:
    from cloud.cli_common import open_store_of, settings_of
    from cloud.labels import SaleWindow
    from cloud.training_data import read_windows

    store = open_store_of(args)
    try:
        records = read_windows(store, window=SaleWindow.of(settings_of(args)))
    finally:
        store.dispose()
    print(f"{len(records)} windows from the store", file=sys.stderr)
    return records


def run(args: argparse.Namespace) -> int:
    """Train, gate and write the bundle; exit 0 with a bundle, 1 when a gate failed."""
    from models.bundle import generate_key, load_private_key, private_key_pem, public_key_pem
    from models.train.fit import DistillArgs
    from models.train.pipeline import TrainConfig, train_bundle

    if args.from_store:
        records = _from_store(args)
    else:
        records = sorted(_read(args.data), key=lambda r: r.window.t_start)
    if args.heldout:
        train, heldout = records, _read(args.heldout)
    else:
        if not 0 < args.heldout_fraction < 1:
            raise ValueError("--heldout-fraction must be between 0 and 1")
        cut = int(len(records) * (1 - args.heldout_fraction))
        train, heldout = records[:cut], records[cut:]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.signing_key:
        key = load_private_key(args.signing_key.read_bytes())
    else:
        key = generate_key()
        (args.out / "signing-key.pem").write_bytes(private_key_pem(key))
        (args.out / "signing-key.pem").chmod(0o600)
        print(f"new signing key written to {args.out / 'signing-key.pem'}", file=sys.stderr)
    (args.out / "trusted-key.pem").write_bytes(public_key_pem(key))
    cfg = TrainConfig.recipe(
        args.teacher,
        args.student,
        epochs=args.epochs,
        progress=not args.no_progress,
        checkpoint=args.checkpoint,
        distill_args=DistillArgs(hidden_weight=1.0, attention_weight=1.0)
        if args.transfer
        else DistillArgs(),
        version=args.version,
        threads=args.threads,
        min_labelled=args.min_labelled,
    )
    result = train_bundle(train, heldout, args.out, signing_key=key, config=cfg)
    for name, s in result.scores.items():
        print(
            f"{name:>14}: interest macro-F1 {s.interest.macro_f1:.3f}  stock macro-F1 {s.stock.macro_f1:.3f}"
        )
    print(f"report: {result.report}")
    if result.bundle is None:
        for failure in result.gates.failures():
            print(f"gate failed: {failure}", file=sys.stderr)
        print("no bundle written", file=sys.stderr)
        return 1
    print(f"bundle: {result.bundle}")
    return 0
