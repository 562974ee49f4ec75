"""Property-based OpenAPI testing of the running app with every check, in every role, on both databases.

Schemathesis reads ``/openapi.json`` from the live app and, for every operation and
every role's key (unit, backend, operator), generates schema-valid and schema-violating
requests (a bounded number each) and runs all of its checks: no 5xx; statuses,
content types, headers and bodies as documented; valid data accepted and invalid data
refused; requests without or with a wrong key refused; the ``Allow`` header of a 405.

Four rules cannot be said in JSON Schema: ``/v1/interest`` answers 400 ``bad_range``
when ``until`` is not after ``since`` or the span is over 31 days, ``/v1/events``
answers 400 ``bad_cursor`` to a cursor it did not sign, ``/v1/claims`` answers 400
``bad_code`` to a code whose check character does not match, and a unit's calibration
report naming a slot twice is refused with 422 (``uniqueItems`` compares whole entries,
not their ``slot``). For those operations alone, that refusal counts as accepting
valid data (:func:`accepted_or_bad_range`); any other refusal of valid data still fails.

The failed-authentication limit per source is off here (it answers 429 where the
``ignored_auth`` check wants 401 for each of its many key-less requests from one
address); ``tests/cloud/test_http_bounds.py`` tests that limit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cloud.keys import Role
from cloud.settings import build_settings
from tests.cloud.support import Live, batch, make_key, register_unit, serve
from tests.support.postgres import pg_schema

EXAMPLES = 6  # per operation, role and mode: 36 per operation, ~1,000 calls per database
ROLES = (Role.UNIT, Role.BACKEND, Role.OPERATOR)


CROSS_PARAMETER = {  # operation: (status, code, what the message says)
    ("GET", "/v1/interest"): (400, "bad_range", ""),
    ("GET", "/v1/events"): (400, "bad_cursor", ""),
    ("POST", "/v1/claims"): (400, "bad_code", ""),
    ("PUT", "/v1/devices/{device_id}/calibration"): (
        422,
        "invalid_value",
        "each slot appears at most once",
    ),
}


@schemathesis.check
def accepted_or_bad_range(ctx, response, case) -> bool | None:
    """Valid data accepted, or refused only for the operation's documented cross-parameter rule."""
    rule = CROSS_PARAMETER.get((case.operation.method.upper(), case.operation.path))
    if rule is None:  # registered for every operation: only ours are judged here
        return None
    status, code, says = rule
    body = response.json() if response.status_code == status else {}
    if body.get("code") == code and says in str(body.get("message", "")):
        return True
    return positive_data_acceptance(ctx, response, case)  # judges valid data only


def _not_sent_as_generated(value) -> bool:
    """A generated query value whose wire form is not the value: one that serialises to
    no parameter at all (None, an empty list), or a one-element list, sent as its element
    alone (``[true]`` goes out as ``store=true``, a valid store id)."""
    if value is None or (isinstance(value, list | dict | str) and len(value) == 0):
        return True
    return isinstance(value, list) and len(value) == 1


@schemathesis.check
def rejects_invalid_data_as_sent(ctx, response, case) -> bool | None:
    """``negative_data_rejection``, except for a mutation that never reaches the wire.

    Schemathesis can make an optional query parameter "invalid" with a value that
    serialises to nothing (an empty list), or to a single text value (a one-element
    array): the request then carries no such parameter, or one text value that may well
    be valid, so accepting it can be right.
    """
    query = case.query or {}
    if any(_not_sent_as_generated(v) for v in query.values()):
        return None
    return negative_data_rejection(ctx, response, case)


MALFORMED_HTTP = "Invalid HTTP request received."  # uvicorn's answer before any app code


def _not_http(response) -> bool:
    return response.status_code == 400 and response.text.strip() == MALFORMED_HTTP


@schemathesis.check
def documented_answer_unless_not_http(ctx, response, case) -> bool | None:
    """The response conformance checks (status, content type, headers, body schema),
    except for a request that is not valid HTTP at all.

    Negative generation can send a header that breaks HTTP itself (a name with ``;`` or
    ``^``); uvicorn's parser answers 400 in plain text before the app sees the request,
    so no route's documented answers apply to it.
    """
    if _not_http(response):
        return None
    for check in NOT_HTTP_EXEMPT:
        check(ctx, response, case)
    return True


NOT_HTTP_EXEMPT = (
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)


def run_operation(op, mode, base_url: str, headers: dict[str, str], calls: dict[str, int]) -> None:
    """Generate and check ``EXAMPLES`` requests of one operation in one mode, every check."""
    swap = mode is GenerationMode.POSITIVE and (op.method.upper(), op.path) in CROSS_PARAMETER
    negative = {
        "excluded_checks": [negative_data_rejection, *NOT_HTTP_EXEMPT],
        "additional_checks": [rejects_invalid_data_as_sent, documented_answer_unless_not_http],
    }
    extra = {
        "excluded_checks": [positive_data_acceptance],
        "additional_checks": [accepted_or_bad_range],
    }

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case) -> None:
        calls["n"] += 1
        kw = extra if swap else negative if mode is GenerationMode.NEGATIVE else {}
        case.call_and_validate(base_url=base_url, headers=headers, **kw)

    try:
        check()
    except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
        assert mode is GenerationMode.NEGATIVE


@pytest.fixture(params=["sqlite", "postgresql"])
def app_live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    def settings_for(url: str):
        return build_settings(database_url=url, rate_per_s=0, auth_fail_per_s=0)

    if request.param == "sqlite":
        with serve(settings_for(f"sqlite:///{tmp_path / 'c.db'}")) as live:
            yield live
    else:
        with pg_schema() as url, serve(settings_for(url)) as live:
            yield live


@pytest.mark.slow(seconds=60)
def test_api_conforms_to_its_schema_in_every_role(app_live: Live) -> None:
    live = app_live
    unit = register_unit(live.store, "unit-0007", store_id="store-12", bay="bay-3")
    with live.client(unit) as c:
        doc = batch("unit-0007", range(1, 20), store="store-12", bay="bay-3", stock_units=4)
        assert c.post("/v1/ingest/events", json=doc).status_code == 200
    keys = {Role.UNIT: unit, **{r: make_key(live.store, r) for r in ROLES if r is not Role.UNIT}}
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 20
    calls = {"n": 0}
    started = time.monotonic()
    for op in operations:
        for role in ROLES:
            headers = {"Authorization": f"Bearer {keys[role]}"}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run_operation(op, mode, live.url, headers, calls)
    assert calls["n"] > len(operations) * len(ROLES) * 2
    # the service is still serving after everything it was sent
    assert live.client().get("/v1/health").json()["status"] == "ok"
    print(
        f"schemathesis ({live.store.dialect}): {calls['n']} calls, all checks, "
        f"{len(ROLES)} roles, {time.monotonic() - started:.1f} s"
    )
