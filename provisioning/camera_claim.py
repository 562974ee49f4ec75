"""Claim by camera: in setup mode the unit reads a claim-code QR held up to its own camera.

Staff hold the operator's QR code (printed, or on a phone) in front of the unit. The
shell :func:`watch_camera` reads frames from the unit's :class:`~edge.camera.source.FrameSource`,
decodes QR codes in them with zxing-cpp (the optional ``qr`` extra:
``pip install 'shelfsense[qr]'``) and hands what it read to :class:`QrClaimState`,
which decides, free of I/O, which code to try and when: a QR that is not a claim code
is ignored, a code the cloud refused for good is not tried again while it stays in
view, and one that failed for a passing reason (network) is tried again after a
pause. The first claim that succeeds ends the watch. Frames stay in memory and are
dropped after decoding, as everywhere on the unit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge.camera.source import FrameSource
from models.claim_code import ClaimCodeError, display, normalize

QR_PAYLOAD = "shelfsense-claim:"  # what a claim code's QR holds before the code (fleet claim-codes)
RETRY_S = 10.0  # a code that failed for a passing reason is tried again after this long
MAX_TEXT = 64  # longer QR text is not a claim code


class QrUnavailable(RuntimeError):
    """The QR decoder is not installed on this unit."""


class QrDecoder(Protocol):
    """Texts of the QR codes in a greyscale frame."""

    def __call__(self, image: npt.NDArray[np.uint8]) -> list[str]: ...


def zxing_decoder() -> QrDecoder:
    """zxing-cpp's QR reader; :class:`QrUnavailable` with what to install when it is missing."""
    try:
        import zxingcpp
    except ImportError:
        raise QrUnavailable(
            "reading claim codes from the camera needs the zxing-cpp package, which is not "
            "installed on this unit: `pip install 'shelfsense[qr]'`, or type the code instead"
        ) from None
    qr = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)

    def decode(image: npt.NDArray[np.uint8]) -> list[str]:
        return [str(b.text) for b in zxingcpp.read_barcodes(image, formats=qr) if b.valid]

    return decode


def claim_code_of(text: str) -> str | None:
    """The claim code a QR text carries (``shelfsense-claim:XXXXX-XXXXX`` or the bare code)."""
    if len(text) > MAX_TEXT:
        return None
    body = text.strip()
    if body.lower().startswith(QR_PAYLOAD):
        body = body[len(QR_PAYLOAD) :].strip()
    try:
        return normalize(body)
    except ClaimCodeError:
        return None


@dataclass
class QrClaimState:
    """Which code to try, from the QR texts seen (see the module docstring)."""

    retry_s: float = RETRY_S
    refused: dict[str, str] = field(default_factory=dict)  # code -> the cloud's reason
    _wait_until: dict[str, float] = field(default_factory=dict)
    claimed: str | None = None
    last_message: str = ""

    def seen(self, texts: Sequence[str], now: float) -> str | None:
        """The code to claim with now, if any, from the texts decoded in one frame."""
        if self.claimed is not None:
            return None
        for text in texts:
            code = claim_code_of(text)
            if code is None:
                self.last_message = "a QR code that is not a claim code was shown"
                continue
            if code in self.refused:
                self.last_message = self.refused[code]
                continue
            if now < self._wait_until.get(code, 0.0):
                continue
            return code
        return None

    def failed(self, code: str, message: str, now: float, *, permanent: bool) -> None:
        """The claim with ``code`` did not complete: never again, or not before a pause."""
        self.last_message = message
        if permanent:
            self.refused[code] = message
        else:
            self._wait_until[code] = now + self.retry_s

    def succeeded(self, code: str, message: str) -> None:
        """The unit is claimed: nothing more to try."""
        self.claimed = code
        self.last_message = message


def passing(message: str) -> bool:
    """True when a claim failed for a reason that may pass (the cloud out of reach)."""
    return message.startswith("cannot reach the cloud")


def watch_camera(
    source: FrameSource,
    claim: Callable[[str], Any],
    stop: threading.Event,
    *,
    decoder: QrDecoder | None = None,
    state: QrClaimState | None = None,
    say: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> QrClaimState:
    """Read frames until a claim succeeds or ``stop`` is set.

    ``claim(code)`` runs the claim and raises on failure (its message is kept for
    staff); :class:`QrUnavailable` comes from here, before the camera opens.
    """
    from provisioning.claim import ClaimError

    decode = decoder or zxing_decoder()
    state = state or QrClaimState()
    with source:
        while not stop.is_set() and state.claimed is None:
            frame = source.read()
            if frame is None:  # none within the read timeout, or a simulated run is over
                stop.wait(0.05)
                continue
            code = state.seen(decode(frame.image), clock())
            del frame
            if code is None:
                continue
            say(f"claim code seen by the camera: {display(code)}")
            try:
                claim(code)
            except ClaimError as err:
                message = str(err)
                state.failed(code, message, clock(), permanent=not passing(message))
                say(f"claim by camera failed: {message}")
                continue
            state.succeeded(code, "claimed with the code shown to the camera")
    return state
