"""The dependency rules of the design hold in the source: edge and cloud meet only in models."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAINING_STACK = {"torch", "transformers", "optimum", "datasets", "accelerate", "onnx"}

# package -> top-level packages of ours it may import
ALLOWED = {
    "models": {"models"},
    "firmware_bridge": {"firmware_bridge", "models"},
    "edge": {"edge", "firmware_bridge", "models"},
    "cloud": {"cloud", "models"},
    "provisioning": {"provisioning", "edge", "models", "firmware_bridge"},
}
OURS = {*ALLOWED, "shelfsense", "tests"}


def imported_modules(path: Path) -> set[str]:
    """Top-level module names imported anywhere in a file (including inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def source_files(package: str) -> list[Path]:
    return sorted(
        p
        for p in (ROOT / package).rglob("*.py")
        if "firmware" not in p.relative_to(ROOT).parts[1:2]
    )


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_design_allows(package: str) -> None:
    bad = []
    for path in source_files(package):
        ours = imported_modules(path) & OURS
        for name in ours - ALLOWED[package]:
            bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", ["models", "firmware_bridge", "edge", "provisioning"])
def test_training_stack_only_in_models_train(package: str) -> None:
    bad = []
    for path in source_files(package):
        rel = path.relative_to(ROOT)
        if rel.parts[:2] == ("models", "train"):
            continue
        for name in imported_modules(path) & TRAINING_STACK:
            bad.append(f"{rel} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from cloud.app import create_app\n    import torch\n")
    assert {"cloud", "torch"} <= imported_modules(f)
