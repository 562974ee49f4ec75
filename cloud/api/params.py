"""Query parameters shared by the read routes, bounded and patterned as the OpenAPI document says.

Every string a caller can put in a URL is limited in length and refused with
NUL or control characters before it reaches a query (422 ``invalid_value``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from models.wire import ID_PATTERN, TEXT_PATTERN

StoreQ = Annotated[
    str | None, Query(pattern=ID_PATTERN, description="A store id.", examples=["store-12"])
]
BayQ = Annotated[str | None, Query(pattern=ID_PATTERN, description="A bay id.", examples=["bay-3"])]
SkuQ = Annotated[
    str | None,
    Query(min_length=1, max_length=64, pattern=TEXT_PATTERN, examples=["SKU-000123"]),
]
CursorQ = Annotated[
    str | None,
    Query(
        max_length=512,
        pattern=TEXT_PATTERN,
        description="``next_cursor`` of the previous page (one edited is refused with 400).",
    ),
]
