"""``/v1/keys``: make, list and revoke API keys (operator only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from cloud import fleet
from cloud.api.deps import ConnDep, OperatorKey, ServicesDep
from cloud.api.errors import AUTH_ERRORS, responses
from cloud.keys import ApiKey, Role, create_key, list_keys, revoke_key
from cloud.schemas import KeyCreate, KeyCreated, KeyPublic, KeysPublic

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses={**AUTH_ERRORS, **responses(404)})


def public(key: ApiKey) -> KeyPublic:
    """The listed form of a key."""
    return KeyPublic(
        key_id=key.key_id,
        role=key.role.value,
        name=key.name,
        device_id=key.device_id,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@router.post("", response_model=KeyCreated, status_code=201)
def make_key(body: KeyCreate, _key: OperatorKey, services: ServicesDep) -> KeyCreated:
    """Make a key; the token is in this answer only. A unit key names a registered device."""
    role = Role(body.role)
    device_id = body.device_id
    with services.store.writer.begin() as conn:
        if device_id is not None:
            fleet.get_device(conn, device_id)
        made = create_key(conn, role=role, name=body.name, device_id=device_id)
    return KeyCreated(token=made.token, **public(made.key).model_dump())


@router.get("", response_model=KeysPublic)
def read_keys(_key: OperatorKey, conn: ConnDep, include_revoked: bool = False) -> KeysPublic:
    """Every key (never a secret)."""
    data = [public(k) for k in list_keys(conn, include_revoked=include_revoked)]
    return KeysPublic(data=data, count=len(data))


@router.delete("/{key_id}", response_model=KeyPublic)
def delete_key(
    key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{1,32}$")],
    _key: OperatorKey,
    services: ServicesDep,
) -> KeyPublic:
    """Revoke a key; it stops working at once here, within ``key_cache_s`` on other replicas."""
    with services.store.writer.begin() as conn:
        key = revoke_key(conn, key_id)
    services.keys.forget(key_id)
    return public(key)
