"""The console's Models and Rollouts pages: what they show, escaped, and who may press the buttons."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from cloud import rollouts
from cloud.keys import Role
from cloud.ota_schemas import RolloutCreate
from cloud.registry import confusion_matrices
from cloud.store.tables import rollouts as rollouts_table
from tests.cloud.console_support import csrf_of, published_model, signed_in
from tests.cloud.support import Live, make_key, register_fleet

XSS = "<script>alert(1)</script>"


def _rollout(live: Live, units: int = 4) -> int:
    register_fleet(live.store, {f"unit-{i}": ("store-1", "bay-1") for i in range(units)})
    published_model(live.store, 2)
    with live.store.writer.begin() as conn:
        rollout_id = rollouts.create_rollout(
            conn, RolloutCreate.model_validate({"model_version": 2, "phases": "canary:1,100%"})
        )
    rollouts.tick(live.store)
    return rollout_id


def _status(live: Live, rollout_id: int) -> str:
    with live.store.engine.connect() as conn:
        stmt = select(rollouts_table.c.status).where(rollouts_table.c.rollout_id == rollout_id)
        return str(conn.execute(stmt).scalar_one())


def test_pages_need_a_session(live: Live) -> None:
    with live.client() as client:
        for path in ("/console/models", "/console/rollouts"):
            r = client.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/console/signin")
        assert client.post("/console/rollouts/1/halt", data={"csrf": "x"}).status_code == 401


def test_models_page_shows_metrics_and_confusion_matrices_escaped(live: Live) -> None:
    published_model(live.store, 3, contender=XSS)
    with signed_in(live, make_key(live.store, Role.OPERATOR)) as client:
        empty = client.get("/console/rollouts")
        assert "No rollouts yet" in empty.text
        page = client.get("/console/models")
    assert page.status_code == 200
    assert 'id="model-v3"' in page.text
    assert "0.910" in page.text and "0.870" in page.text  # macro-F1 per head
    assert "true \\ predicted" in page.text and ">removal<" in page.text
    assert '<td class="heat-5">40</td>' in page.text  # the row's peak at full shade
    assert "93.2 % on the diagonal" in page.text  # (40 + 30 + 12) / 88
    assert XSS not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_rollouts_page_shows_each_phase_and_an_operator_pauses_and_halts(live: Live) -> None:
    rollout_id = _rollout(live)
    with signed_in(live, make_key(live.store, Role.OPERATOR)) as client:
        page = client.get("/console/rollouts")
        assert page.status_code == 200
        assert f'id="rollout-{rollout_id}"' in page.text and "canary" in page.text
        assert "Pause" in page.text and "Roll back" in page.text
        token = csrf_of(page.text.split('id="rollout-')[1])
        r = client.post(f"/console/rollouts/{rollout_id}/pause", data={"csrf": token})
        assert r.status_code == 303
        assert _status(live, rollout_id) == "paused"
        assert "Resume" in client.get("/console/rollouts").text
        r = client.post(f"/console/rollouts/{rollout_id}/pause", data={"csrf": token})
        assert r.status_code == 409  # only a running rollout pauses
        assert client.post("/console/rollouts/999/halt", data={"csrf": token}).status_code == 404
        r = client.post(f"/console/rollouts/{rollout_id}/halt", data={"csrf": token})
        assert r.status_code == 303
    assert _status(live, rollout_id) == "halted"


def test_rollout_buttons_refuse_a_backend_key_and_a_forged_form(live: Live) -> None:
    rollout_id = _rollout(live)
    with signed_in(live, make_key(live.store, Role.OPERATOR)) as client:
        r = client.post(f"/console/rollouts/{rollout_id}/halt", data={"csrf": "forged"})
        assert r.status_code == 403
        assert client.post(f"/console/rollouts/{rollout_id}/halt").status_code == 403
    with signed_in(live, make_key(live.store, Role.BACKEND)) as client:
        page = client.get("/console/rollouts")
        assert "Sign in with an operator key" in page.text and "Roll back</button>" not in page.text
        token = csrf_of(page.text)  # the sign-out form's token: a valid one for this session
        r = client.post(f"/console/rollouts/{rollout_id}/halt", data={"csrf": token})
        assert r.status_code == 403
    assert _status(live, rollout_id) == "running"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 50)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(json_values)
def test_confusion_matrices_keeps_only_square_count_matrices_from_any_report(
    scores: object,
) -> None:
    for heads in confusion_matrices(scores).values():
        for m in heads.values():
            n = len(m["labels"])
            assert len(m["matrix"]) == n
            assert all(
                len(r) == n and all(isinstance(v, int) and v >= 0 for v in r) for r in m["matrix"]
            )


def test_confusion_matrices_reads_a_training_report() -> None:
    scores = {
        "student int8": {
            "stock": {
                "labels": ["none", "removal"],
                "confusion": [[3, 1], [0, 5]],
                "macro_f1": 0.8,
            },
            "interest": {"labels": ["glance"], "confusion": [[1, 2]]},  # not square: left out
        }
    }
    assert confusion_matrices(scores) == {
        "student int8": {"stock": {"labels": ["none", "removal"], "matrix": [[3, 1], [0, 5]]}}
    }
