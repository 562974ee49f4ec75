"""``shelfsense fleet claim-codes create|list|revoke``: codes that store staff type to claim a unit."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

QR_PAYLOAD = "shelfsense-claim:"  # what a claim QR code holds before the code
_DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d`` … as a timedelta (argparse type)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number and s, m, h or d, like 7d")
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def register(fleet_sub: Any, db_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``fleet claim-codes`` to the ``fleet`` subcommands."""
    group = fleet_sub.add_parser("claim-codes", help="claim codes that put units into service")
    cs = group.add_subparsers(dest="claim_codes_command", metavar="CLAIMCOMMAND", required=True)
    p = cs.add_parser("create", help="make codes for a bay; prints each once, with its QR code")
    db_args(p)
    p.add_argument("--store", required=True, help="store id")
    p.add_argument("--bay", required=True, help="bay id")
    p.add_argument("--count", type=int, default=1, help="how many codes (default 1)")
    p.add_argument("--expires", type=duration, default=timedelta(days=7), help="e.g. 7d, 12h")
    p.add_argument("--note", default="", help="a note operators see in the list")
    p.add_argument(
        "--qr-dir", type=Path, default=Path("claim-codes"), help="where QR PNGs go (./claim-codes)"
    )
    p.add_argument("--no-terminal-qr", action="store_true", help="do not draw QR codes here")
    p.set_defaults(func=cmd_create)
    p = cs.add_parser("list", help="codes (never the code itself) and refused claims")
    db_args(p)
    p.add_argument("--store", default=None, help="only this store's codes")
    p.set_defaults(func=cmd_list)
    p = cs.add_parser("revoke", help="withdraw a code that is not used yet")
    db_args(p)
    p.add_argument("code_id")
    p.set_defaults(func=cmd_revoke)


def _store(args: argparse.Namespace) -> Any:
    from cloud.cli_common import open_store_of

    return open_store_of(args)


def cmd_create(args: argparse.Namespace) -> int:
    """Make codes, print each once, write its QR code as PNG (and draw it here)."""
    import segno

    from cloud import claims
    from models.claim_code import display

    with _store(args).writer.begin() as conn:
        made = claims.create_codes(
            conn, args.store, args.bay, count=args.count, expires_in=args.expires, note=args.note
        )
    args.qr_dir.mkdir(parents=True, exist_ok=True)
    for code, text in made:
        shown = display(text)
        png = args.qr_dir / f"{shown}.png"
        qr = segno.make(QR_PAYLOAD + shown, error="m")
        qr.save(str(png), scale=8, border=4)
        png.chmod(0o600)
        expires = code.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(f"{shown}  {code.store_id}/{code.bay_id}  id {code.code_id}  expires {expires}")
        print(f"  QR code: {png}")
        if not args.no_terminal_qr:
            qr.terminal(out=sys.stdout, compact=True)
    print(f"{len(made)} code(s); each is shown only now (the cloud keeps a hash).")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """A table of codes and the refused claims by reason."""
    from cloud import claims

    with _store(args).engine.connect() as conn:
        codes = claims.list_codes(conn, args.store)
        failures = claims.failure_counts(conn)
    now = datetime.now(UTC)
    print(f"{'id':<13} {'code':<9} {'store/bay':<24} {'state':<8} {'expires':<17} device")
    for c in codes:
        where = f"{c.store_id}/{c.bay_id}"
        expires = c.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        print(
            f"{c.code_id:<13} {c.prefix + '…':<9} {where:<24} {c.state(now):<8} {expires:<17} "
            f"{c.device_id or '-'}"
        )
    refused = ", ".join(f"{k} {v}" for k, v in sorted(failures.items())) or "none"
    print(f"refused claims: {refused}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    """Withdraw one code."""
    from cloud import claims

    with _store(args).writer.begin() as conn:
        code = claims.revoke_code(conn, args.code_id)
    print(f"revoked claim code {code.code_id} ({code.prefix}…) for {code.store_id}/{code.bay_id}")
    return 0
