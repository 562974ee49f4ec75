"""``shelfsense fleet keys signing``: make (once) and show the model-signing key pair.

Model bundles are signed with an Ed25519 private key (``cloud train --signing-key``)
and units check them with its public half, which the cloud hands to each unit when
it claims (``signing_public_key_file`` in the cloud's settings). This command makes
the pair in a folder — the private key written whole, mode 0600 — or, when the pair
is already there, leaves it untouched and shows the public key again, with where
each file goes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

PRIVATE_FILE = "model-signing.pem"
PUBLIC_FILE = "model-signing.pub.pem"


def register(keys_sub: Any) -> None:
    """Add ``fleet keys signing``."""
    p = keys_sub.add_parser(
        "signing", help="make (once) and show the key pair that signs model bundles"
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=Path("signing"),
        help="folder for model-signing.pem and model-signing.pub.pem (default ./signing)",
    )
    p.set_defaults(func=cmd_signing)


def cmd_signing(args: argparse.Namespace) -> int:
    """Make the pair unless it exists; print the public key and how each file is used."""
    from models.atomic import write_text_atomic
    from models.bundle import generate_key, load_private_key, private_key_pem, public_key_pem
    from models.errors import BundleError

    private, public = args.dir / PRIVATE_FILE, args.dir / PUBLIC_FILE
    if private.exists():
        try:
            key = load_private_key(private.read_bytes())
        except (OSError, ValueError, BundleError) as err:
            print(f"{private}: not an Ed25519 private key: {err}", file=sys.stderr)
            return 2
        print(f"signing key already made: {private} (left as it is)")
    else:
        args.dir.mkdir(parents=True, exist_ok=True)
        key = generate_key()
        write_text_atomic(private, private_key_pem(key).decode(), perms=0o600)
        print(f"made a new signing key: {private} (mode 0600: keep it off the units)")
    pem = public_key_pem(key).decode()
    if not public.exists() or public.read_text(encoding="utf-8") != pem:
        write_text_atomic(public, pem, perms=0o644)
    print(f"public key: {public}")
    print(pem.rstrip())
    print("where it goes:")
    print(f"  sign bundles      shelfsense cloud train ... --signing-key {private}")
    print(f"  the cloud         SHELFSENSE_CLOUD_SIGNING_PUBLIC_KEY_FILE={public.resolve()}")
    print("                    (checks bundles at `fleet models publish`; every unit gets it")
    print("                    when it claims, and checks each bundle against it)")
    return 0
