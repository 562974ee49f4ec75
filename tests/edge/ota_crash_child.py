"""A unit that installs two bundles in turn forever, to be killed with ``kill -9``.

``python -m tests.edge.ota_crash_child BUNDLE_DIR KEY_PEM SRC_A SRC_B COUNTER`` stages
each bundle in the slot not in use and switches to it, again and again, writing the
number of switches done to COUNTER after each.
"""

from __future__ import annotations

import sys
from pathlib import Path

from edge.ota.install import install_bundle
from models.atomic import write_text_atomic
from models.bundle import load_public_key


def main() -> None:
    """Install SRC_A, SRC_B, SRC_A … until killed."""
    bundle_dir, key_pem, src_a, src_b, counter = (Path(a) for a in sys.argv[1:6])
    key = load_public_key(key_pem.read_bytes())
    n = 0
    while True:
        src = src_a if n % 2 == 0 else src_b
        install_bundle(
            src, bundle_dir, trusted_keys=[key], agent_version="0.1.0", allow_downgrade=True
        )
        n += 1
        write_text_atomic(counter, str(n), durable=False)


if __name__ == "__main__":
    main()
