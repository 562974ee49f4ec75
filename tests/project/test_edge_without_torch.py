"""The edge install has no training stack: every edge-side module imports where torch can't."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCKER = """
import importlib.abc, sys
BLOCKED = {"torch", "transformers", "optimum", "accelerate", "datasets"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed on a unit")
        return None
sys.meta_path.insert(0, Block())
"""


def edge_side_modules() -> list[str]:
    mods = []
    for package in ("models", "firmware_bridge", "edge", "provisioning"):
        for p in sorted((ROOT / package).rglob("*.py")):
            rel = p.relative_to(ROOT)
            if rel.parts[:2] == ("models", "train") or rel.parts[:2] == (
                "firmware_bridge",
                "firmware",
            ):
                continue
            mod = ".".join(rel.with_suffix("").parts)
            mods.append(mod.removesuffix(".__init__"))
    return mods


def run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_blocker_blocks_torch() -> None:
    res = run_blocked("import torch")
    assert res.returncode != 0
    assert "not installed on a unit" in res.stderr


def test_every_edge_side_module_imports_without_torch() -> None:
    mods = edge_side_modules()
    assert "edge.config" in mods and "models.types" in mods
    code = f"import importlib\nfor m in {mods!r}:\n    importlib.import_module(m)\nprint('ok')"
    res = run_blocked(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ok")


def test_edge_commands_parse_without_torch() -> None:
    res = run_blocked("from shelfsense.cli import build_parser\nbuild_parser()\nprint('ok')")
    assert res.returncode == 0, res.stderr
