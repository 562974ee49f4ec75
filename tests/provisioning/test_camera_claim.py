"""Claim by camera: a claim code's QR held up to the (simulated) camera, decoded by zxing-cpp.

The simulated camera draws the card in its scene, lit, flickering and noisy like the
rest; zxing-cpp (the ``qr`` extra) reads it; the unit claims itself against the real
cloud under uvicorn.
"""

from __future__ import annotations

import builtins
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.claims_cli import QR_PAYLOAD as CLOUD_QR_PAYLOAD
from edge.camera.drawing import qr_card
from edge.camera.sim import SimulatedSource
from edge.config import load_config
from edge.sync.identity import load_identity
from models.claim_code import ClaimCodeError, display, normalize
from provisioning.camera_claim import (
    QR_PAYLOAD,
    QrClaimState,
    QrUnavailable,
    claim_code_of,
    zxing_decoder,
)
from provisioning.claim import IDENTITY_FILE
from tests.cloud.support import Live
from tests.provisioning.setup_support import setup_mode
from tests.provisioning.test_claim import cloud, make_code  # noqa: F401 (fixture)
from tests.support.waiting import wait_until

CODE = "7KQ2MXB9D4"


def valid_code() -> str:
    from models.claim_code import new_code

    return str(new_code())


def test_the_unit_reads_the_same_qr_text_the_operator_prints() -> None:
    assert QR_PAYLOAD == CLOUD_QR_PAYLOAD
    code = valid_code()
    assert claim_code_of(QR_PAYLOAD + display(code)) == code
    assert claim_code_of(display(code).lower()) == code
    assert claim_code_of("https://example.com/") is None
    assert claim_code_of(QR_PAYLOAD + code[:-1] + ("0" if code[-1] != "0" else "1")) is None
    assert claim_code_of(QR_PAYLOAD + "X" * 200) is None


@given(st.text(max_size=120))
def test_any_qr_text_is_a_valid_code_or_nothing(text: str) -> None:
    code = claim_code_of(text)
    assert code is None or normalize(code) == code


SOME_CODES = [valid_code() for _ in range(20)]
TYPED = st.one_of(
    st.text(max_size=12),
    st.sampled_from(SOME_CODES).map(display),
    st.sampled_from(SOME_CODES).map(str.lower),
    st.tuples(
        st.sampled_from(SOME_CODES),
        st.integers(0, 9),
        st.sampled_from("0123456789ABCDEFGHJKMNPQRSTVWXYZ"),
    ).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]  # one character changed (or not)
    ),
)


@given(st.sampled_from(["", QR_PAYLOAD, QR_PAYLOAD.upper()]), TYPED)
def test_a_text_is_a_code_only_when_its_check_character_fits(head: str, body: str) -> None:
    try:
        want: str | None = normalize(body.strip())
    except ClaimCodeError:
        want = None
    assert claim_code_of(head + body) == want


def test_a_refused_code_is_not_tried_again_and_a_passing_failure_waits() -> None:
    a, b = valid_code(), valid_code()
    state = QrClaimState(retry_s=10)
    assert state.seen(["hello", QR_PAYLOAD + a], now=0) == a
    state.failed(a, "this claim code has already been used", 0, permanent=True)
    assert state.seen([QR_PAYLOAD + a], now=100) is None
    assert "already been used" in state.last_message
    assert state.seen([QR_PAYLOAD + a, QR_PAYLOAD + b], now=100) == b
    state.failed(b, "cannot reach the cloud", 100, permanent=False)
    assert state.seen([QR_PAYLOAD + b], now=105) is None
    assert state.seen([QR_PAYLOAD + b], now=111) == b
    state.succeeded(b, "claimed")
    assert state.seen([QR_PAYLOAD + b], now=200) is None


def test_without_zxing_cpp_the_unit_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_zxing(name: str, *args: Any, **kw: Any) -> Any:
        if name == "zxingcpp":
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_zxing)
    with pytest.raises(QrUnavailable, match=r"pip install 'shelfsense\[qr\]'"):
        zxing_decoder()


def test_a_card_held_up_to_the_simulated_camera_is_decoded() -> None:
    pytest.importorskip("zxingcpp")
    decode = zxing_decoder()
    cam = SimulatedSource(duration_s=2.0, fps=10, seed=4)
    with cam:
        first = cam.read()
        assert first is not None and decode(first.image) == []
        text = QR_PAYLOAD + display(valid_code())
        cam.hold_up(qr_card(text))
        frames = [cam.read() for _ in range(5)]
        assert all(f is not None and decode(f.image) == [text] for f in frames)
        cam.hold_up(None)
        after = cam.read()
        assert after is not None and decode(after.image) == []
    with pytest.raises(ValueError, match="within 320x240"):
        cam.hold_up(np.zeros((300, 300), np.uint8))


def test_the_unit_claims_itself_from_a_qr_shown_to_its_camera(
    cloud: Live,  # noqa: F811
    tmp_path: Path,
) -> None:
    pytest.importorskip("zxingcpp")
    code = str(make_code(cloud)["code"])
    cam = SimulatedSource(duration_s=600, fps=10, seed=2, realtime=True)
    cam.hold_up(qr_card("https://example.com/menu"))  # some other QR first: ignored
    stop = threading.Event()
    said: list[str] = []
    with setup_mode(tmp_path, cloud=cloud.url) as su:
        assert not su.unit.claim_state()[1]
        thread = su.unit.watch_camera(cam, stop, say=said.append)
        assert thread is not None
        try:
            wait_until(lambda: "not a claim code" in su.unit.camera_note, timeout=30)
            cam.hold_up(qr_card(QR_PAYLOAD + code))
            wait_until(lambda: su.unit.claim_state()[1], timeout=60)
            thread.join(timeout=30)
            assert not thread.is_alive(), "the watch ends once the unit is claimed"
        finally:
            stop.set()
        ident = load_identity(tmp_path / "var" / IDENTITY_FILE)
        assert su.unit.claimed is not None and ident.device_id == su.unit.claimed.device_id
        unit = load_config(su.config)
        assert (unit.unit.store, unit.unit.bay) == ("store-7", "bay-2")
        assert unit.sync.base_url == cloud.url
    assert f"claim code seen by the camera: {code}" in said
    assert said[-1] == "claimed with the code shown to the camera"


def test_a_spent_code_shown_to_the_camera_is_refused_once_with_a_message(
    cloud: Live,  # noqa: F811
    tmp_path: Path,
) -> None:
    pytest.importorskip("zxingcpp")
    from provisioning.claim import claim

    code = str(make_code(cloud)["code"])
    claim(code, cloud.url, tmp_path / "first-unit", say=lambda _: None)
    cam = SimulatedSource(duration_s=600, fps=10, seed=2, realtime=True)
    cam.hold_up(qr_card(QR_PAYLOAD + display(code)))
    stop = threading.Event()
    said: list[str] = []
    real = zxing_decoder()
    frames: list[int] = []

    def decode(image: np.ndarray) -> list[str]:
        frames.append(1)
        return real(image)

    with setup_mode(tmp_path, cloud=cloud.url) as su:
        thread = su.unit.watch_camera(cam, stop, decoder=decode, say=said.append)
        assert thread is not None
        try:
            wait_until(lambda: "already been used" in su.unit.camera_note, timeout=30)
            seen = len(frames)
            wait_until(lambda: len(frames) > seen + 10, timeout=30)  # still watching
        finally:
            stop.set()
            thread.join(timeout=10)
        assert not su.unit.claim_state()[1]
        assert not (tmp_path / "var" / IDENTITY_FILE).exists()
    assert sum("claim by camera failed" in s for s in said) == 1, said
