"""Property-based OpenAPI testing of the running app: no 5xx, every response as documented.

Schemathesis reads ``/openapi.json`` from the live app and generates valid and
invalid requests for every operation (a bounded number each); each answer must
be a non-5xx status the schema lists, with the documented content type and body.
"""

from __future__ import annotations

import time

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cloud.keys import Role
from cloud.settings import build_settings
from tests.cloud.support import batch, make_key, register_unit, serve

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 10  # per operation and mode (20 per operation): the run stays well under a minute


def run_operation(op, mode, base_url: str, headers: dict[str, str], calls: dict[str, int]) -> None:
    """Generate and check ``EXAMPLES`` requests of one operation in one mode."""

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
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

    try:
        check()
    except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
        assert mode is GenerationMode.NEGATIVE


def test_api_conforms_to_its_schema(tmp_path) -> None:
    s = build_settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", rate_per_s=0)
    with serve(s) as live:
        unit = register_unit(live.store, "unit-0007", store_id="store-12", bay="bay-3")
        with live.client(unit) as c:
            doc = batch("unit-0007", range(1, 20), store="store-12", bay="bay-3", stock_units=4)
            assert c.post("/v1/ingest/events", json=doc).status_code == 200
        keys = {"unit": unit, "operator": make_key(live.store, Role.OPERATOR)}
        schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 20
        calls = {"n": 0}
        started = time.monotonic()
        for op in operations:
            role = "unit" if op.path == "/v1/ingest/events" else "operator"
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run_operation(op, mode, live.url, {"Authorization": f"Bearer {keys[role]}"}, calls)
        assert calls["n"] > len(operations) * 2
        # the service is still serving after everything it was sent
        assert live.client().get("/v1/health").json()["status"] == "ok"
        print(f"schemathesis: {calls['n']} calls in {time.monotonic() - started:.1f} s")
