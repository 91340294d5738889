"""The audit log: every write and list read is recorded, and tampering is detected."""

from __future__ import annotations

import time

import httpx
import orjson
import sqlalchemy as sa
from tests.hub.conftest import World, item, md5_of, open_hub, pdq_of, populate, serving

from hashhub.hub import audit
from hashhub.hub.models import audit_log


def _busy_world(world: World) -> None:
    (item_id,) = world.submit_ok("iwf", [item(1)])
    world.feed("plat")
    world.client("plat").get("/api/v1/snapshot")
    world.client("plat").post("/api/v1/match", json={"fingerprints": [{"md5": md5_of(1)}]})
    world.client("plat").post(
        f"/api/v1/items/{item_id}/feedback", json={"verdict": "negative", "reason": "x"}
    )
    world.client("iwf").post(f"/api/v1/items/{item_id}/withdraw", json={"reason": "x"})


def _records(world: World, action: str) -> list[sa.Row]:
    with world.hub.engine.connect() as conn:
        return conn.execute(sa.select(audit_log).where(audit_log.c.action == action)).all()


def _match_records(world: World, requests: int, timeout: float = 10.0) -> list[sa.Row]:
    """The match records once they account for `requests` requests (they are written in the
    background, a window after the requests)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = _records(world, "match")
        if sum(orjson.loads(r.detail)["requests"] for r in rows) >= requests or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_writes_and_list_reads_are_recorded_in_order(world: World) -> None:
    _busy_world(world)
    with world.hub.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log.c.actor, audit_log.c.action).order_by(audit_log.c.seq)).all()
    actions = [(r.actor, r.action) for r in rows if r.action.startswith(("items", "feed", "snap", "item."))]
    assert actions == [
        ("iwf", "items.submit"),
        ("plat", "feed.read"),
        ("plat", "snapshot.read"),
        ("plat", "item.feedback"),
        ("iwf", "item.withdraw"),
    ]
    assert ("cli", "org.create") in [(r.actor, r.action) for r in rows]
    assert [r.actor for r in _match_records(world, 1)] == ["plat"]  # the match: within its window
    result = audit.verify(world.hub.engine)
    assert result.ok and result.records == len(rows) + 1
    assert world.client("admin").get("/api/v1/audit/verify").json()["ok"] is True


def test_matches_are_audited_as_one_chained_record_per_key_per_window(world: World) -> None:
    (listed,) = world.submit_ok("iwf", [item(1)])
    plat = world.client("plat")
    for queries in ([{"md5": md5_of(1)}], [{"md5": md5_of(2)}], [{"md5": md5_of(1)}, {"pdq": pdq_of(1)}]):
        assert plat.post("/api/v1/match", json={"fingerprints": queries}).status_code == 200
    assert world.client("plat2").post("/api/v1/match", json={"fingerprints": [{"md5": md5_of(3)}]}).is_success
    rows = _match_records(world, 4)
    mine = [orjson.loads(r.detail) for r in rows if r.actor == "plat"]
    assert sum(d["requests"] for d in mine) == 3  # a window boundary may split them in two records
    assert sum(d["queries"] for d in mine) == 4 and sum(d["matched"] for d in mine) == 3
    assert {i for d in mine for i in d["items"]} == {listed}
    assert {r.target for r in rows if r.actor == "plat"} == {world.keys["plat"].split("_")[1]}  # key id
    others = [orjson.loads(r.detail) for r in rows if r.actor == "plat2"]
    assert [(d["requests"], d["matched"], d["items"]) for d in others] == [(1, 0, [])]
    assert len(rows) <= 4  # summed, not one record per request
    assert audit.verify(world.hub.engine).ok


def test_pending_match_records_are_written_when_the_server_stops(sqlite_url: str) -> None:
    hub = open_hub(sqlite_url, audit_match_window_seconds=60)  # nothing is written while it serves
    try:
        keys = populate(hub)
        with serving(hub) as url, httpx.Client(base_url=url, headers=bearer(keys["plat"])) as plat:
            for _ in range(3):
                assert plat.post("/api/v1/match", json={"fingerprints": [{"md5": md5_of(1)}]}).is_success
            time.sleep(0.2)
            assert _records(World(hub, url), "match") == []
        (row,) = _records(World(hub, url), "match")
        assert orjson.loads(row.detail)["requests"] == 3
        assert audit.verify(hub.engine).ok
    finally:
        hub.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _tamper(world: World, statement: sa.Executable) -> audit.Verification:
    with world.hub.engine.begin() as conn:
        conn.execute(statement)
    return audit.verify(world.hub.engine)


def test_an_edited_record_is_detected(world: World) -> None:
    _busy_world(world)
    result = _tamper(world, sa.update(audit_log).where(audit_log.c.seq == 3).values(actor="someone-else"))
    assert not result.ok and any("record 3 was altered" in p for p in result.problems)


def test_a_deleted_record_is_detected(world: World) -> None:
    _busy_world(world)
    result = _tamper(world, sa.delete(audit_log).where(audit_log.c.seq == 4))
    assert not result.ok and any("record 4 is missing" in p for p in result.problems)


def test_a_recomputed_record_still_breaks_the_next_link(world: World) -> None:
    _busy_world(world)
    with world.hub.engine.begin() as conn:
        row = conn.execute(sa.select(audit_log).where(audit_log.c.seq == 5)).one()
        forged = audit._digest(row.seq, row.at, "forger", row.action, row.target, row.detail, row.prev_hash)
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 5).values(actor="forger", hash=forged))
    result = audit.verify(world.hub.engine)
    assert not result.ok and any("record 6 does not link" in p for p in result.problems)


def test_truncating_the_tail_is_detected(world: World) -> None:
    _busy_world(world)
    with world.hub.engine.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(audit_log.c.seq))).scalar_one()
    result = _tamper(world, sa.delete(audit_log).where(audit_log.c.seq == last))
    assert not result.ok and any("removed from the end" in p for p in result.problems)
