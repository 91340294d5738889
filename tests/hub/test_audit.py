"""The audit log: every write and list read is recorded, and tampering is detected."""

from __future__ import annotations

import sqlalchemy as sa
from tests.hub.conftest import World, item, md5_of

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


def test_writes_and_list_reads_are_recorded_in_order(world: World) -> None:
    _busy_world(world)
    with world.hub.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log.c.actor, audit_log.c.action).order_by(audit_log.c.seq)).all()
    actions = [
        (r.actor, r.action) for r in rows if r.action.startswith(("items", "feed", "snap", "match", "item."))
    ]
    assert actions == [
        ("iwf", "items.submit"),
        ("plat", "feed.read"),
        ("plat", "snapshot.read"),
        ("plat", "match"),
        ("plat", "item.feedback"),
        ("iwf", "item.withdraw"),
    ]
    assert ("cli", "org.create") in [(r.actor, r.action) for r in rows]
    result = audit.verify(world.hub.engine)
    assert result.ok and result.records == len(rows)
    assert world.client("admin").get("/api/v1/audit/verify").json()["ok"] is True


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
