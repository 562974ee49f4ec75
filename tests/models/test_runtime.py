"""The runtime: decisions from a bundle; a refused bundle leaves the previous model in use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.bundle import GOLDEN
from models.errors import BackendError, BundleError
from models.labels import INTEREST_LABELS, STOCK_LABELS
from models.runtime import BACKENDS, ModelRuntime
from models.runtime.onnx import OnnxBackend
from models.runtime.tflite import find_interpreter
from models.types import Presence, WeightChange
from models.window import EventWindow
from tests.models.conftest import BuiltBundle, build_bundle
from tests.models.factory import make_records
from tests.models.test_bundle import copy, rehash, resign


def test_classify_gives_one_interest_and_one_stock_decision_per_change(
    bundle_factory: BuiltBundle,
) -> None:
    rt = ModelRuntime(trusted_keys=[bundle_factory.key.public_key()])
    rt.load(bundle_factory.path)
    windows = [r.window for r in make_records(30, seed=5)]
    for batch in (1, 7):
        out = rt.classify(windows, batch_size=batch)
        assert len(out) == len(windows)
        for w, d in zip(windows, out, strict=True):
            assert d.interest in INTEREST_LABELS and 0 < d.interest_confidence <= 1
            assert len(d.stock) == len(w.changes)
            assert all(lab in STOCK_LABELS and 0 < c <= 1 for lab, c in d.stock)


def test_windows_past_the_change_capacity_are_split_not_dropped(
    bundle_factory: BuiltBundle,
) -> None:
    from models.physics import allows

    rt = ModelRuntime(trusted_keys=[bundle_factory.key.public_key()])
    rt.load(bundle_factory.path)
    # removals, no-change, additions and two unweighable changes (NaN grams), which
    # allow only ``sensor_fault``: each decision must sit at its own change's place
    kinds = [(-1, -45.0), (0, 0.0), (1, 45.0)]
    many = tuple(
        WeightChange(
            1,
            float("nan") if i in (3, 17) else kinds[i % 3][1],
            kinds[i % 3][0],
            float(i),
            i + 0.5,
            0.9,
        )
        for i in range(20)
    )
    w = EventWindow("b", 1, 0, 30, 10, Presence("bay", 0, 30, 30, 0.5, 1), (), many, {}, 0)
    parts = rt.encode(w)
    assert len(parts) > 1  # past the capacity: more than one encoding
    assert sum(len(p.change_positions) for p in parts) == 20  # every change in one part
    d = rt.classify([w])[0]
    assert len(d.stock) == 20
    for c, (label, conf) in zip(many, d.stock, strict=True):
        assert allows(label, c.units, c.grams), (c, label)
        assert 0 < conf <= 1
    assert d.stock[3][0] == d.stock[17][0] == "sensor_fault"  # in different parts
    assert d.interest in INTEREST_LABELS


def test_a_refused_bundle_keeps_the_previous_model(
    bundle_factory: BuiltBundle, tmp_path: Path
) -> None:
    rt = ModelRuntime(trusted_keys=[bundle_factory.key.public_key()])
    rt.load(bundle_factory.path)
    windows = [r.window for r in make_records(10, seed=6)]
    before = rt.classify(windows)
    bad = copy(bundle_factory, tmp_path)
    (bad / "vocab.json").unlink()
    with pytest.raises(BundleError, match="missing file"):
        rt.load(bad)
    assert rt.version == 1 and rt.bundle is not None and rt.bundle.path == bundle_factory.path
    assert rt.classify(windows) == before


def test_golden_outputs_that_do_not_reproduce_are_refused(
    bundle_factory: BuiltBundle, tmp_path: Path
) -> None:
    path = copy(bundle_factory, tmp_path)
    lines = [json.loads(x) for x in (path / GOLDEN).read_text().splitlines()]
    probs = np.asarray(lines[1]["interest_probs"])
    wrong = np.zeros_like(probs)  # all weight on the class the model likes least
    wrong[np.arange(len(probs)), probs.argmin(axis=1)] = 1.0
    lines[1]["interest_probs"] = wrong.tolist()
    (path / GOLDEN).write_text("".join(json.dumps(g) + "\n" for g in lines))
    resign(path, bundle_factory.key, lambda m: rehash(m, path, GOLDEN))
    rt = ModelRuntime(trusted_keys=[bundle_factory.key.public_key()])
    with pytest.raises(BundleError, match="golden batch 2"):
        rt.load(path)
    assert rt.version is None


def test_a_new_version_replaces_the_old_one(tmp_path: Path, bundle_factory: BuiltBundle) -> None:
    newer = build_bundle(tmp_path, version=2, seed=3)
    rt = ModelRuntime(trusted_keys=[bundle_factory.key.public_key(), newer.key.public_key()])
    rt.load(bundle_factory.path)
    rt.load(newer.path)
    assert rt.version == 2


def test_the_tflite_backend_needs_a_tflite_file_and_an_interpreter(
    bundle_factory: BuiltBundle,
) -> None:
    rt = ModelRuntime(trusted_keys=[bundle_factory.key.public_key()], backend="tflite")
    with pytest.raises(BundleError, match=r"no model\.tflite"):
        rt.load(bundle_factory.path)
    try:
        find_interpreter()
    except BackendError as err:
        assert "ai_edge_litert" in str(err) and "tflite_runtime" in str(err)


def test_unknown_backend_and_no_model_are_errors() -> None:
    with pytest.raises(BackendError, match="unknown backend"):
        ModelRuntime(trusted_keys=[], backend="tpu")
    with pytest.raises(BackendError, match="no model"):
        ModelRuntime(trusted_keys=[]).classify([])
    assert set(BACKENDS) == {"onnx", "tflite"}


def test_onnx_backend_sets_telemetry_off_and_refuses_garbage(tmp_path: Path) -> None:
    import os

    assert os.environ["ORT_DISABLE_TELEMETRY"] == "1"
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(BackendError, match="cannot load"):
        OnnxBackend(junk)


def test_a_bundle_copied_elsewhere_still_loads(bundle_factory: BuiltBundle, tmp_path: Path) -> None:
    dest = tmp_path / "moved"
    shutil.copytree(bundle_factory.path, dest)
    assert ModelRuntime(trusted_keys=[bundle_factory.key.public_key()]).load(dest).version == 1


def test_runtime_from_a_unit_config(bundle_factory: BuiltBundle, tmp_path: Path) -> None:
    from models.bundle import public_key_pem
    from models.runtime import ModelConfig

    key = tmp_path / "trusted.pem"
    key.write_bytes(public_key_pem(bundle_factory.key))
    cfg = ModelConfig(bundle_dir=bundle_factory.path, trusted_key=key, threads=2)
    rt = ModelRuntime.from_config(cfg)
    assert rt.threads == 2 and rt.backend_name == "onnx"
    assert rt.load(cfg.bundle_dir).version == 1
    with pytest.raises(BundleError, match="trusted key"):
        ModelRuntime.from_config(ModelConfig(trusted_key=tmp_path / "missing.pem"))
