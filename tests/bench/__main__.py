"""Run the benchmarks, each in its own process: ``python -m tests.bench [--quick] [NAME ...]``.

Each prints its own table; names are the module suffixes (``weight``, ``decode`` …).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

BENCHES = (
    "weight",
    "weight_path",
    "decode",
    "camera",
    "model",
    "buffer",
    "cloud_return",
    "agent",
    "agent_crash",
    "stock",
    "ingest",
    "reads",
    "console",
    "read_burst",
    "mqtt_fuzz",
    "storm",
    "ota",
    "ota_resume",
    "ota_switch",
)


def main() -> int:
    ap = argparse.ArgumentParser(description="Run the shelfsense benchmarks.")
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default all: {' '.join(BENCHES)})"
    )
    args = ap.parse_args()
    unknown = sorted(set(args.names) - set(BENCHES))
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}")
    failed = []
    for name in args.names or BENCHES:
        print(f"\n### bench_{name}\n", flush=True)
        cmd = [
            sys.executable,
            "-m",
            f"tests.bench.bench_{name}",
            *(["--quick"] if args.quick else []),
        ]
        if subprocess.run(cmd).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
