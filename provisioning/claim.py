"""Claiming a unit: a typed code in, the unit's identity on disk, the code spent.

The workflow, each step safe to repeat after a power cut or a lost answer:

1. the code is checked here first (length, alphabet, check character), so a typo is
   told before anything is sent;
2. the unit's own Ed25519 key pair is made once (``device-key.pem``, 0600) and kept:
   a retried claim sends the same public key, which is how the cloud knows it;
3. ``POST /v1/claims`` with the code and the public key answers the identity;
4. the broker CA, the model-signing key and the trusted TUF root (``tuf-root.json``,
   which the OTA client starts from), then ``identity.json``, are written atomically
   (0600), then the config's ``[unit]`` and ``[sync]`` keys (and ``model.trusted_key``);
5. ``POST /v1/claims/complete`` with the new key spends the code.

A failure before step 5 leaves the code usable by this unit (and only this unit);
running the same command again finishes the job.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from pydantic import ValidationError

from models.atomic import write_text_atomic
from models.claim_code import ClaimCodeError, ClaimGrant, ClaimRequest, display, normalize

KEY_FILE = "device-key.pem"
IDENTITY_FILE = "identity.json"
CA_FILE = "broker-ca.pem"
SIGNING_KEY_FILE = "model-signing.pub.pem"
TUF_ROOT_FILE = "tuf-root.json"  # the OTA client's trusted root (``ota.trusted_root``)
MAX_ANSWER_BYTES = 256 * 1024
TIMEOUT_S = 15.0


class ClaimError(RuntimeError):
    """A claim that did not complete; the message tells a shop employee what to do."""


@dataclass(frozen=True)
class ClaimResult:
    """What the claim wrote."""

    device_id: str
    store_id: str
    bay_id: str
    files: tuple[Path, ...]


def device_public_key(data_dir: Path) -> str:
    """The unit's public key (base64url), making the key pair on first use."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = data_dir / KEY_FILE
    if path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ClaimError(f"{path} is not an Ed25519 key; move it away and claim again")
        key = loaded
    else:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_text_atomic(path, pem.decode(), perms=0o600)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).decode()


def _answer(response: requests.Response, url: str) -> dict[str, Any]:
    """The JSON body of a cloud answer, bounded; :class:`ClaimError` for anything else."""
    body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
    if len(body) > MAX_ANSWER_BYTES:
        raise ClaimError(f"the cloud at {url} answered more than {MAX_ANSWER_BYTES} bytes")
    try:
        doc = json.loads(body)
    except ValueError:
        raise ClaimError(
            f"the cloud at {url} answered HTTP {response.status_code} with something that is "
            "not JSON: is --cloud the right address?"
        ) from None
    if not isinstance(doc, dict):
        raise ClaimError(f"the cloud at {url} answered an unexpected document")
    if response.status_code >= 400:
        message = doc.get("message") if isinstance(doc.get("message"), str) else None
        raise ClaimError(message or f"the cloud refused the claim (HTTP {response.status_code})")
    return doc


def _post(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = requests.post(url, json=body, headers=headers, timeout=TIMEOUT_S, stream=True)
    except requests.RequestException as err:
        raise ClaimError(
            f"cannot reach the cloud at {url} ({type(err).__name__}); check the network and "
            "run the same command again — the code stays valid for this unit"
        ) from None
    with response:
        return _answer(response, url)


def _chown(path: Path, owner: str | None) -> None:
    if owner is None:
        return
    user = pwd.getpwnam(owner)
    os.chown(path, user.pw_uid, user.pw_gid)


def _write_config(path: Path, grant: ClaimGrant, cloud: str, data_dir: Path) -> None:
    """Set the unit's ids and the cloud address in its TOML config, keeping the rest."""
    import tomlkit

    doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    unit = doc.setdefault("unit", tomlkit.table())
    unit["device_id"] = grant.device_id
    unit["store"] = grant.store_id
    unit["bay"] = grant.bay_id
    unit.setdefault("data_dir", str(data_dir))
    sync = doc.setdefault("sync", tomlkit.table())
    sync["base_url"] = cloud
    sync["identity_file"] = str((data_dir / IDENTITY_FILE).resolve())
    if grant.model_signing_key_pem:  # bundles (offline or over the air) are checked with it
        model = doc.setdefault("model", tomlkit.table())
        model["trusted_key"] = str((data_dir / SIGNING_KEY_FILE).resolve())
    write_text_atomic(path, tomlkit.dumps(doc), perms=0o640)


def claim(
    typed_code: str,
    cloud: str,
    data_dir: Path,
    *,
    config: Path | None = None,
    name: str = "",
    owner: str | None = None,
    say: Callable[[str], None] = print,
) -> ClaimResult:
    """Run the claim workflow (module docstring); :class:`ClaimError` when it cannot finish."""
    try:
        code = normalize(typed_code)
    except ClaimCodeError as err:
        raise ClaimError(str(err)) from None
    cloud = cloud.rstrip("/")
    data_dir.mkdir(parents=True, exist_ok=True)
    public_key = device_public_key(data_dir)
    say(f"claiming with code {display(code)} at {cloud} …")
    request = ClaimRequest(code=code, public_key=public_key, name=name)
    doc = _post(f"{cloud}/v1/claims", request.model_dump())
    try:
        grant = ClaimGrant.model_validate(doc)
    except ValidationError as err:
        first = err.errors()[0]["msg"]
        raise ClaimError(f"the cloud's answer is not a valid identity: {first}") from None
    files: list[Path] = [data_dir / KEY_FILE]
    ident: dict[str, Any] = {
        "device_id": grant.device_id,
        "api_key": grant.api_key,
        "mqtt_username": grant.mqtt_username,
        "mqtt_password": grant.mqtt_password,
    }
    if grant.broker_ca_pem:
        write_text_atomic(data_dir / CA_FILE, grant.broker_ca_pem, perms=0o600)
        ident["ca_file"] = CA_FILE
        files.append(data_dir / CA_FILE)
    if grant.model_signing_key_pem:
        write_text_atomic(data_dir / SIGNING_KEY_FILE, grant.model_signing_key_pem, perms=0o600)
        files.append(data_dir / SIGNING_KEY_FILE)
    if grant.tuf_root:
        write_text_atomic(data_dir / TUF_ROOT_FILE, json.dumps(grant.tuf_root), perms=0o600)
        files.append(data_dir / TUF_ROOT_FILE)
    write_text_atomic(data_dir / IDENTITY_FILE, json.dumps(ident, indent=2) + "\n", perms=0o600)
    files.append(data_dir / IDENTITY_FILE)
    if config is not None:
        _write_config(config, grant, cloud, data_dir)
        files.append(config)
    for path in files:
        _chown(path, owner)
    _post(f"{cloud}/v1/claims/complete", {}, token=grant.api_key)
    say(f"this unit is {grant.device_id} on {grant.store_id}/{grant.bay_id}; the code is used up")
    return ClaimResult(grant.device_id, grant.store_id, grant.bay_id, tuple(files))
