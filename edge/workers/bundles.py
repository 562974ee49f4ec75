"""Installing a model bundle from a local folder on the unit (before the OTA step exists).

:func:`install_bundle` copies the folder beside ``model.bundle_dir``, verifies the copy
(signature under a trusted key, hashes, golden outputs are checked again at load), and
only then swaps it in with renames; the bundle it replaces is removed afterwards. The
agent decides with it from its next start (:func:`~edge.workers.decide.build_decider`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from models.bundle import Bundle, verify_bundle


def install_bundle(
    src: Path, bundle_dir: Path, *, trusted_keys: Sequence[Ed25519PublicKey]
) -> Bundle:
    """Copy, verify and switch ``src`` in as ``bundle_dir``; raises ``BundleError`` if refused."""
    bundle_dir = Path(bundle_dir)
    bundle_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = bundle_dir.with_name(f".{bundle_dir.name}.new-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(src, tmp)
        bundle = verify_bundle(tmp, trusted_keys=trusted_keys)
        if bundle_dir.exists():
            old = bundle_dir.with_name(f".{bundle_dir.name}.old-{os.getpid()}")
            os.replace(bundle_dir, old)
            os.replace(tmp, bundle_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, bundle_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return bundle
