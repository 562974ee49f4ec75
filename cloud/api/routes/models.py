"""``/v1/models`` (the registry, operator only) and ``/v1/tuf/`` (the TUF repository, static files).

The TUF files need no key: every one is signed, units verify them against the root
they were provisioned with, and they may be served by a CDN or object store. Files
whose name holds a version or a hash never change and are cached for a year; the
timestamp for a minute, the unversioned names not at all.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from cloud import registry
from cloud.api.deps import ConnDep, OperatorKey, ServicesDep
from cloud.api.errors import AUTH_ERRORS, responses
from cloud.ota_schemas import ModelPublic, ModelsPublic
from cloud.tuf_repo import TufRepository

router = APIRouter(
    prefix="/v1/models", tags=["models"], responses={**AUTH_ERRORS, **responses(404)}
)
tuf_router = APIRouter(prefix="/v1/tuf", tags=["tuf"], responses=responses(404))

IMMUTABLE = "public, max-age=31536000, immutable"
METADATA_NAME = r"^(?:[1-9][0-9]{0,9}\.)?(?:root|targets|snapshot|timestamp)\.json$"
TARGET_NAME = r"^[0-9a-f]{64}\.[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


@router.get("", response_model=ModelsPublic)
def read_models(_key: OperatorKey, conn: ConnDep) -> ModelsPublic:
    """Published model versions, newest first, with metrics and training data."""
    data = registry.list_models(conn)
    return ModelsPublic(data=data, count=len(data))


@router.get("/{version}", response_model=ModelPublic)
def read_model(
    version: Annotated[int, Path(ge=0, le=2**31 - 1)], _key: OperatorKey, conn: ConnDep
) -> ModelPublic:
    """One published version."""
    return registry.get_model(conn, version)


@tuf_router.get("/metadata/{name}", response_class=FileResponse)
def read_metadata(
    name: Annotated[str, Path(pattern=METADATA_NAME)], services: ServicesDep
) -> FileResponse:
    """A metadata file: ``N.root.json``, ``timestamp.json``, ``N.snapshot.json``, ``N.targets.json``."""
    path = TufRepository.from_settings(services.settings).metadata_file(name)
    if name == "timestamp.json":
        cache = "public, max-age=60"
    elif name[0].isdigit():
        cache = IMMUTABLE
    else:
        cache = "no-cache"
    return FileResponse(path, media_type="application/json", headers={"Cache-Control": cache})


@tuf_router.get("/targets/{name}", response_class=FileResponse)
def read_target(
    name: Annotated[str, Path(pattern=TARGET_NAME)], services: ServicesDep
) -> FileResponse:
    """A target file by its hash-prefixed name (``<sha256>.model-v2.tar``)."""
    path = TufRepository.from_settings(services.settings).target_file(name)
    return FileResponse(
        path, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE}
    )
