"""What the backend reads, over HTTP: stock with confirmation times, interest, the feed, ETags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.keys import Role
from cloud.reads import interest
from cloud.schemas import FeedPage, InterestPublic
from tests.cloud.support import Live, event, make_key, register_unit

URL = "/v1/ingest/events"
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def post(c, device, evs) -> None:
    r = c.post(URL, json={"device_id": device, "events": evs})
    assert r.status_code == 200, r.text


def test_stock_is_the_latest_confirmed_figure_per_slot(live: Live) -> None:
    u = live.client(register_unit(live.store, "unit-1"))
    be = live.client(make_key(live.store, Role.BACKEND))
    post(
        u,
        "unit-1",
        [
            event("unit-1", 2, t=T0, slot=0, sku="A", stock_units=10),
            event("unit-1", 3, t=T0 + timedelta(minutes=5), slot=0, sku="A", stock_units=9),
            event("unit-1", 4, t=T0, slot=1, sku="A", kind="level", label="ok", stock_units=4),
            event("unit-1", 5, t=T0, slot=2, sku="B", stock_units=None),  # no figure: no row
        ],
    )
    # an older seq stored late (a retried batch) must not roll the figure back
    post(
        u,
        "unit-1",
        [event("unit-1", 1, t=T0 + timedelta(minutes=9), slot=0, sku="A", stock_units=20)],
    )
    slots = be.get("/v1/stock", params={"store": "store-1"}).json()
    assert [(s["slot"], s["stock_units"], s["seq"]) for s in slots["data"]] == [
        (0, 9, 3),
        (1, 4, 4),
    ]
    assert datetime.fromisoformat(slots["data"][0]["confirmed_at"]) == T0 + timedelta(minutes=5)
    skus = be.get("/v1/stock/skus").json()["data"]
    assert [(s["sku"], s["stock_units"], s["slots"]) for s in skus] == [("A", 13, 2)]
    assert datetime.fromisoformat(skus[0]["oldest_confirmed_at"]) == T0
    assert be.get("/v1/stock", params={"sku": "B"}).json()["count"] == 0


def test_interest_per_sku_per_hour(live: Live) -> None:
    u = live.client(register_unit(live.store, "unit-1"))
    be = live.client(make_key(live.store, Role.BACKEND))
    labels = ["pass_by", "glance", "touch", "touch", "take", "browse"]
    evs = [
        event(
            "unit-1",
            i + 1,
            t=T0 + timedelta(minutes=i),
            kind="interest",
            label=lab,
            sku="A",
            slot=None,
            units=None,
            dwell_s=float(i + 1),
        )
        for i, lab in enumerate(labels)
    ]
    evs.append(
        event(
            "unit-1",
            7,
            t=T0 + timedelta(hours=1, minutes=2),
            kind="interest",
            label="take",
            sku="A",
            slot=None,
            units=None,
            dwell_s=10.0,
        )
    )
    evs.append(event("unit-1", 8, t=T0, sku="A"))  # a stock event: not interest
    post(u, "unit-1", evs)
    got = be.get(
        "/v1/interest", params={"sku": "A", "since": (T0 - timedelta(hours=1)).isoformat()}
    ).json()
    assert got["count"] == 2
    first, second = got["data"]
    assert datetime.fromisoformat(first["hour"]) == T0
    assert first["counts"] == {"pass_by": 1, "glance": 1, "touch": 2, "take": 1, "browse": 1}
    assert first["episodes"] == 6
    assert first["dwell_mean_s"] == 3.5 and first["dwell_max_s"] == 6.0
    assert first["touch_to_take"] == 1 / 3
    assert second["counts"] == {"take": 1} and second["touch_to_take"] == 1.0
    r = be.get(
        "/v1/interest",
        params={"since": T0.isoformat(), "until": (T0 - timedelta(hours=1)).isoformat()},
    )
    assert (r.status_code, r.json()["code"]) == (400, "bad_range")


def test_feed_pages_with_filters_and_refuses_tampered_cursors(live: Live) -> None:
    u = live.client(register_unit(live.store, "unit-1"))
    be = live.client(make_key(live.store, Role.BACKEND))
    post(
        u,
        "unit-1",
        [event("unit-1", i, t=T0 + timedelta(seconds=i), sku=f"S{i % 3}") for i in range(1, 31)],
    )
    seen, cursor = [], None
    while True:
        params = {"sku": "S1", "limit": 4, **({"cursor": cursor} if cursor else {})}
        page = be.get("/v1/events", params=params).json()
        seen += [e["seq"] for e in page["data"]]
        cursor = page["next_cursor"]
        if page["count"] < 4:
            break
    assert seen == [i for i in range(1, 31) if i % 3 == 1]
    # nothing new: the same cursor comes back, and the ETag makes the poll a 304
    r = be.get("/v1/events", params={"sku": "S1", "limit": 4, "cursor": cursor})
    assert r.json()["next_cursor"] == cursor and r.json()["count"] == 0
    r2 = be.get(
        "/v1/events",
        params={"sku": "S1", "limit": 4, "cursor": cursor},
        headers={"If-None-Match": r.headers["etag"]},
    )
    assert r2.status_code == 304 and r2.content == b""
    post(u, "unit-1", [event("unit-1", 31, sku="S1")])
    r3 = be.get(
        "/v1/events",
        params={"sku": "S1", "limit": 4, "cursor": cursor},
        headers={"If-None-Match": r.headers["etag"]},
    )
    assert r3.status_code == 200 and [e["seq"] for e in r3.json()["data"]] == [31]
    # since and type filters
    page = be.get(
        "/v1/events", params={"since": (T0 + timedelta(seconds=25)).isoformat(), "type": "stock"}
    ).json()
    assert [e["seq"] for e in page["data"]] == [25, 26, 27, 28, 29, 30, 31]
    assert be.get("/v1/events", params={"type": "interest"}).json()["count"] == 0
    # tampering, foreign filters, garbage
    body, mac = cursor.split(".")
    for bad in (
        body + "." + mac[::-1],
        body[:-1] + ("A" if body[-1] != "A" else "B") + "." + mac,
        "x",
        "a.b.c",
    ):
        r = be.get("/v1/events", params={"sku": "S1", "cursor": bad})
        assert r.status_code == 400 and r.json()["field"] == "cursor", bad
    r = be.get("/v1/events", params={"sku": "S2", "cursor": cursor})
    assert (r.status_code, r.json()["code"]) == (400, "cursor_filter_mismatch")
    assert be.get("/v1/health").status_code == 200


def test_stock_polls_are_304_until_stock_changes(live: Live) -> None:
    u = live.client(register_unit(live.store, "unit-1"))
    be = live.client(make_key(live.store, Role.BACKEND))
    post(u, "unit-1", [event("unit-1", 1, t=T0, slot=0, sku="A", stock_units=5)])
    first = be.get("/v1/stock")
    tag = first.headers["etag"]
    assert be.get("/v1/stock", headers={"If-None-Match": tag}).status_code == 304
    other = be.get("/v1/stock", params={"store": "store-1"})
    assert other.headers["etag"] != tag  # another query, another tag
    # interest events do not touch stock: the poll stays a 304
    post(u, "unit-1", [event("unit-1", 2, kind="interest", label="glance", slot=None)])
    assert be.get("/v1/stock", headers={"If-None-Match": tag}).status_code == 304
    post(
        u,
        "unit-1",
        [event("unit-1", 3, t=T0 + timedelta(minutes=1), slot=0, sku="A", stock_units=4)],
    )
    r = be.get("/v1/stock", headers={"If-None-Match": tag})
    assert r.status_code == 200 and r.json()["data"][0]["stock_units"] == 4
    assert r.headers["etag"] != tag
    skus = be.get("/v1/stock/skus")
    assert skus.json()["data"][0]["stock_units"] == 4
    assert (
        be.get("/v1/stock/skus", headers={"If-None-Match": skus.headers["etag"]}).status_code == 304
    )


@pytest.mark.parametrize("server", ["live", "pg_live"])
def test_interest_counts_an_episode_once_per_sku_and_every_episode_per_bay(
    server: str, request: pytest.FixtureRequest
) -> None:
    live: Live = request.getfixturevalue(server)
    u = live.client(register_unit(live.store, "unit-1"))
    be = live.client(make_key(live.store, Role.BACKEND))
    seq = iter(range(1, 100))

    def concern(episode: int, label: str, slot: int | None, sku: str | None, how: str) -> dict:
        ev = event(
            "unit-1", next(seq), t=T0, kind="interest", label=label, slot=slot, sku=sku,
            units=None, dwell_s=float(episode),
        )  # fmt: skip
        return {**ev, "episode": episode, "features": {"attribution": how}}

    post(
        u,
        "unit-1",
        [
            concern(1, "touch", 0, "A", "handled"),  # one episode, two slots of A and one of B
            concern(1, "touch", 1, "A", "reach"),
            concern(1, "touch", 2, "B", "reach"),
            concern(2, "glance", None, None, "bay"),
            concern(3, "take", 0, "A", "handled"),
        ],
    )
    got = be.get("/v1/interest", params={"since": (T0 - timedelta(hours=1)).isoformat()}).json()
    per_sku = {d["sku"]: (d["counts"], d["episodes"], d["touch_to_take"]) for d in got["data"]}
    assert per_sku == {"A": ({"touch": 1, "take": 1}, 2, 0.5), "B": ({"touch": 1}, 1, 0.0)}
    assert [d["dwell_mean_s"] for d in got["data"]] == [2.0, 1.0]
    (bay,) = got["bays"]
    assert (bay["bay_id"], bay["episodes"], bay["reached"]) == ("bay-1", 3, 2)
    assert bay["counts"] == {"touch": 1, "glance": 1, "take": 1}
    assert datetime.fromisoformat(bay["hour"]) == T0
    narrowed = be.get("/v1/interest", params={"since": T0.isoformat(), "sku": "B"}).json()
    assert [d["sku"] for d in narrowed["data"]] == ["B"] and narrowed["bays"][0]["episodes"] == 3
    other = be.get("/v1/interest", params={"since": T0.isoformat(), "bay": "bay-2"}).json()
    assert other == {"data": [], "count": 0, "bays": []}


@pytest.mark.parametrize("server", ["live", "pg_live"])
def test_a_cached_interest_answer_lasts_until_the_stores_interest_changes(
    server: str, request: pytest.FixtureRequest
) -> None:
    live: Live = request.getfixturevalue(server)
    u1 = live.client(register_unit(live.store, "unit-1"))
    u2 = live.client(register_unit(live.store, "unit-2", "store-2"))
    be = live.client(make_key(live.store, Role.BACKEND))

    def glance(unit: str, seq: int, store: str) -> dict:
        return event(unit, seq, t=T0, kind="interest", label="glance", store=store,
                     slot=None, sku=None, units=None)  # fmt: skip

    post(u1, "unit-1", [glance("unit-1", 1, "store-1")])
    q = {"store": "store-1", "since": (T0 - timedelta(minutes=5)).isoformat()}
    first = be.get("/v1/interest", params=q)
    assert first.json()["bays"][0]["episodes"] == 1
    tag = first.headers["etag"]
    # the same hours asked another way (since later in the hour): the same answer, a 304
    later = {**q, "since": (T0 - timedelta(minutes=1)).isoformat()}
    assert be.get("/v1/interest", params=later, headers={"If-None-Match": tag}).status_code == 304
    # another store's interest leaves this store's answer as it was
    post(u2, "unit-2", [glance("unit-2", 1, "store-2")])
    assert be.get("/v1/interest", params=q, headers={"If-None-Match": tag}).status_code == 304
    # this store's new interest is read at once
    post(u1, "unit-1", [glance("unit-1", 2, "store-1")])
    again = be.get("/v1/interest", params=q, headers={"If-None-Match": tag})
    assert again.status_code == 200 and again.json()["bays"][0]["episodes"] == 2
    # a bad range is refused even where a cached answer covers the same hours
    bad = {**q, "until": (T0 - timedelta(minutes=10)).isoformat()}
    assert be.get("/v1/interest", params=bad).status_code == 400


@pytest.mark.parametrize("server", ["live", "pg_live"])
def test_an_interest_answer_per_sku_shares_the_stores_bay_half(
    server: str, request: pytest.FixtureRequest
) -> None:
    live: Live = request.getfixturevalue(server)
    u = live.client(register_unit(live.store, "unit-1"))
    be = live.client(make_key(live.store, Role.BACKEND))
    evs = [
        event(
            "unit-1",
            i + 1,
            t=T0 + timedelta(minutes=i),
            kind="interest",
            label=label,
            slot=slot,
            sku=sku,
            units=None,
            dwell_s=1.5 * i,
        )
        for i, (label, slot, sku) in enumerate(
            [("touch", 0, "A"), ("take", 1, "B"), ("glance", None, None), ("touch", 1, "B")]
        )
    ]
    post(u, "unit-1", [{**e, "episode": i + 1} for i, e in enumerate(evs)])
    cache = live.server.config.app.state.services.interest_cache
    since = (T0 - timedelta(hours=1)).isoformat()
    answers = {}
    for sku in ("A", "B", "C"):
        misses = cache.misses
        r = be.get("/v1/interest", params={"store": "store-1", "sku": sku, "since": since})
        assert r.status_code == 200, r.text
        answers[sku] = r
        # the per-SKU answer is new each time; the bay half is computed once for the store
        assert cache.misses - misses == (2 if sku == "A" else 1)
    with live.store.writer.connect() as conn:
        for sku, r in answers.items():
            data, bays = interest(conn, store="store-1", sku=sku, since=T0 - timedelta(hours=1),
                                  until=datetime.now(UTC))  # fmt: skip
            # byte for byte what the model would have written
            assert (
                r.content
                == InterestPublic(data=data, count=len(data), bays=bays).model_dump_json().encode()
            )
    assert [d["sku"] for d in answers["B"].json()["data"]] == ["B"]
    assert answers["B"].json()["data"][0]["counts"] == {"take": 1, "touch": 1}
    assert answers["C"].json()["data"] == [] and answers["C"].json()["bays"][0]["episodes"] == 4


@pytest.mark.parametrize("server", ["live", "pg_live"])
def test_a_feed_page_is_byte_for_byte_what_the_models_write(
    server: str, request: pytest.FixtureRequest
) -> None:
    live: Live = request.getfixturevalue(server)
    u = live.client(register_unit(live.store, "unit-1"))
    be = live.client(make_key(live.store, Role.BACKEND))
    interest = {"kind": "interest", "label": "touch", "units": None, "dwell_s": 0.1 + 0.2}
    post(
        u,
        "unit-1",
        [
            event("unit-1", 1, t=T0 + timedelta(microseconds=1), sku='Ünïcode "1"'),
            {**event("unit-1", 2, t=T0, slot=None, sku=None, **interest), "episode": 7},
            {**event("unit-1", 3, t=T0 + timedelta(hours=1), units=-2), "grams": -301.25},
        ],
    )
    r = be.get("/v1/events", params={"limit": 2})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    page = FeedPage.model_validate_json(r.content)
    assert r.content == page.model_dump_json().encode()
    assert [e.seq for e in page.data] == [1, 2] and page.count == 2
    assert page.data[0].sku == 'Ünïcode "1"' and page.data[1].dwell_s == 0.1 + 0.2
    assert page.data[0].wall_time == T0 + timedelta(microseconds=1)
    rest = be.get("/v1/events", params={"limit": 2, "cursor": page.next_cursor})
    assert [e["seq"] for e in rest.json()["data"]] == [3]
    assert rest.content == FeedPage.model_validate_json(rest.content).model_dump_json().encode()
