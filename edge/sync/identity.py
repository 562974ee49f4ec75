"""The unit's identity file: device id, API key, MQTT credentials and CA file.

Written once at provisioning (JSON or TOML); read at start. The sync transports take
TLS and credentials from it, never from the main config.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.errors import EdgeError
from models.wire import DEVICE_ID_PATTERN


class IdentityError(EdgeError, ValueError):
    """An identity file that is missing or does not validate; the message names the file."""


class Identity(BaseModel):
    """Who the unit is to the cloud, and the secrets it proves it with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: str = Field(..., pattern=DEVICE_ID_PATTERN, description="Device id.")
    api_key: str = Field(default="", description="Bearer token for the cloud HTTP API.")
    mqtt_username: str | None = Field(default=None, description="MQTT username.")
    mqtt_password: str | None = Field(default=None, description="MQTT password.")
    ca_file: str | None = Field(default=None, description="CA bundle for TLS (HTTP and MQTT).")
    client_cert: str | None = Field(default=None, description="Client certificate (mutual TLS).")
    client_key: str | None = Field(default=None, description="Client key (mutual TLS).")

    def __repr__(self) -> str:  # never print secrets
        return f"Identity(device_id={self.device_id!r})"

    __str__ = __repr__


def load_identity(path: Path | str) -> Identity:
    """Read and validate an identity file (``.toml`` as TOML, anything else as JSON)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IdentityError(f"{p}: no such identity file") from None
    try:
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise IdentityError(f"{p}: cannot parse: {err}") from None
    try:
        ident = Identity.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise IdentityError(f"{p}: {where}: {first['msg']}") from None
    base = p.parent
    updates = {}
    for key in ("ca_file", "client_cert", "client_key"):
        value = getattr(ident, key)
        if value and not Path(value).is_absolute():
            updates[key] = str(base / value)
    return ident.model_copy(update=updates) if updates else ident
