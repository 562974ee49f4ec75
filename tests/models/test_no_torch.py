"""A unit has no torch, transformers or optimum: loading and running a bundle must not need them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from models.bundle import public_key_pem
from tests.models.conftest import BuiltBundle

SCRIPT = textwrap.dedent(
    """
    import json, sys
    for name in ("torch", "transformers", "optimum", "accelerate"):
        sys.modules[name] = None  # any import of these now raises ImportError
    try:
        import torch  # noqa: F401
        blocked = False
    except ImportError:
        blocked = True
    from models.bundle import load_public_key
    from models.runtime import ModelRuntime
    from models.types import Presence, WeightChange
    from models.window import EventWindow, SlotContext

    key = load_public_key(open(sys.argv[2], "rb").read())
    rt = ModelRuntime(trusted_keys=[key], backend="onnx", threads=1)
    rt.load(sys.argv[1])
    w = EventWindow("b", 1, 0.0, 9.0, 15, Presence("bay", 0.0, 9.0, 9.0, 0.5, 1), (),
                    (WeightChange(0, -240.0, -2, 2.0, 3.0, 0.9),), {0: SlotContext(0, 120.0)}, 1)
    d = rt.classify([w])[0]
    heavy = sorted(m for m in ("torch", "transformers", "optimum") if sys.modules.get(m) is not None)
    print(json.dumps({"blocked": blocked, "interest": d.interest, "stock": d.stock, "heavy": heavy,
                      "version": rt.version}))
    """
)


def test_bundle_loads_and_runs_where_torch_cannot_be_imported(
    bundle_factory: BuiltBundle, tmp_path: Path
) -> None:
    key = tmp_path / "trusted.pem"
    key.write_bytes(public_key_pem(bundle_factory.key))
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(bundle_factory.path), str(key)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "ORT_DISABLE_TELEMETRY": "1"},
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["blocked"] is True
    assert res["heavy"] == []
    assert res["version"] == 1
    assert len(res["stock"]) == 1
