"""The pages' own queries on SQLite and PostgreSQL: what each visitor may count and list."""

from __future__ import annotations

import hashlib
import time

from hashhub import db
from hashhub.hub import feedback, ingest, orgs
from hashhub.web import hub_queries
from tests.hub.conftest import db_url, open_hub, sqlite_url

__all__ = ["db_url", "sqlite_url"]  # the hub tests' fixtures: a fresh SQLite file or PostgreSQL database


def _item(n: int, grade: str) -> dict:
    return {
        "external_id": f"photo-{n}",
        "content_type": "image",
        "classification": {"scheme": "industry", "value": grade},
        "verification": {"reviewers": 1},
        "fingerprints": {"md5": hashlib.md5(f"{n}".encode()).hexdigest()},
    }


def test_dashboard_changes_and_disputes_show_only_what_the_visitor_may_see(db_url: str) -> None:
    hub = open_hub(db_url, dispute_threshold=1)
    try:
        orgs.create_org(hub.engine, "hotline", ["contributor"])
        orgs.create_org(hub.engine, "platform", ["member"])
        orgs.create_list(hub.engine, "shared", read=["platform"], write=["hotline"])
        orgs.create_list(hub.engine, "private", write=["hotline"])
        hotline, platform = orgs.acting_as(hub.engine, "hotline"), orgs.acting_as(hub.engine, "platform")
        shared = ingest.submit(hub, hotline, "shared", [_item(1, "A1"), _item(2, "A1"), _item(3, "B1")])
        ids = [int(i["id"]) for i in shared["items"]]
        ingest.submit(hub, hotline, "private", [_item(4, "A2")])
        feedback.give_feedback(hub, platform, ids[0], "negative", "wrong_grade")
        feedback.withdraw(hub, hotline, ids[1], "listed in error")

        with db.read(hub.engine) as conn:
            member_scope = hub_queries.scope_of(conn, platform)
            own_scope = hub_queries.scope_of(conn, hotline)
            changes = hub_queries.recent_changes(conn, member_scope, None).rows
            disputed = hub_queries.disputed(conn, hotline.org_id, None).rows
            facts = hub_queries.item_facts(conn, ids[0])
        seen = hub_queries.dashboard(hub, member_scope)
        assert not seen.whole  # "private" is not the member's to count
        assert seen.by_list == {"shared": 2} and seen.own_live is None and seen.own_disputes is None
        # Breakdowns count only what the member may see: nothing of "private" (its A2 item).
        assert seen.stats["items"] == 2 and seen.stats["by_grade"] == {"industry:A1": 1, "industry:B1": 1}
        assert seen.stats["by_status"] == {"active": 1, "disputed": 1, "withdrawn": 1}
        own = hub_queries.dashboard(hub, own_scope)
        assert own.own_live == 3 and [r["id"] for r in own.own_disputes.rows] == [ids[0]]
        assert own.by_list == {} and not own.whole
        assert own.stats["items"] == 3 and own.stats["by_list"] == {"shared": 2, "private": 1}
        assert changes[0]["op"] == "delete" and changes[0]["item_id"] == ids[1]
        assert {c["list"] for c in changes} == {"shared"}
        assert [(r["id"], r["reasons"]) for r in disputed] == [(ids[0], {"wrong_grade": 1})]
        assert facts["contributor"] == "hotline" and facts["fingerprints"][0]["signal"] == "md5"
        assert [h["kind"] for h in facts["history"]] == ["disputed", "new"]
    finally:
        hub.close()


def test_a_sparse_visitor_pages_back_through_changes_a_bounded_window_at_a_time(
    sqlite_url: str, monkeypatch
) -> None:
    """A contributor whose few items are far back in a busy feed gets short pages with a link
    further back (each page reads at most CHANGES_WINDOW changes) and finds every change of theirs."""
    monkeypatch.setattr(hub_queries, "CHANGES_WINDOW", 10)
    hub = open_hub(sqlite_url)
    try:
        orgs.create_org(hub.engine, "small", ["contributor"])
        orgs.create_org(hub.engine, "big", ["contributor"])
        orgs.create_list(hub.engine, "shared", write=["small", "big"])
        small, big = orgs.acting_as(hub.engine, "small"), orgs.acting_as(hub.engine, "big")
        mine = ingest.submit(hub, small, "shared", [_item(n, "A1") for n in range(3)])
        ingest.submit(hub, big, "shared", [_item(n, "A1") for n in range(100, 125)])
        with db.read(hub.engine) as conn:
            scope = hub_queries.scope_of(conn, small)
            seen, before, pages = [], None, 0
            while True:
                page = hub_queries.recent_changes(conn, scope, before)
                seen += [r["item_id"] for r in page.rows]
                pages += 1
                if page.more is None:
                    break
                assert page.more < (before or 10**9)  # always moves back
                before = page.more
        assert sorted(seen) == sorted(int(i["id"]) for i in mine["items"])
        assert pages == 3  # 28 changes, 10 cursors a page: the first two pages are empty
    finally:
        hub.close()


def test_dispute_queue_pages_by_item_id_and_hits_count_the_last_30_days(sqlite_url: str) -> None:
    hub = open_hub(sqlite_url, dispute_threshold=1)
    try:
        orgs.create_org(hub.engine, "hotline", ["contributor"])
        orgs.create_org(hub.engine, "platform", ["member"])
        orgs.create_list(hub.engine, "shared", read=["platform"], write=["hotline"])
        hotline, platform = orgs.acting_as(hub.engine, "hotline"), orgs.acting_as(hub.engine, "platform")
        count = hub_queries.PAGE + 5
        ids = [
            int(i["id"])
            for i in ingest.submit(hub, hotline, "shared", [_item(n, "A1") for n in range(count)])["items"]
        ]
        for item_id in ids:
            feedback.give_feedback(hub, platform, item_id, "negative", "wrong_grade")
        feedback.confirm(hub, hotline, ids[-1], "checked again")  # no longer disputed
        feedback.record_hit(hub, platform, ids[0], 3)
        with db.read(hub.engine) as conn:
            first = hub_queries.disputed(conn, hotline.org_id, None)
            second = hub_queries.disputed(conn, hotline.org_id, first.more)
            member_scope = hub_queries.scope_of(conn, platform)
            now = time.time()
            recent = hub_queries.recent_hits(conn, member_scope, now)
            later = hub_queries.recent_hits(conn, member_scope, now + 31 * hub_queries.DAY)
        queued = [r["id"] for r in first.rows + second.rows]
        assert queued == sorted(ids[:-1], reverse=True) and second.more is None
        assert first.rows[0]["reasons"] == {"wrong_grade": 1}
        assert (recent.total, recent.partial, later.total) == (3, False, 0)
    finally:
        hub.close()


def test_a_visitor_who_reads_every_list_sees_every_count_at_once_and_current(db_url: str) -> None:
    """The first visit has its figures (no background count to wait for) and a submit shows up on
    the next visit: the pool is brought up to the committed head first, as a match does."""
    hub = open_hub(db_url)
    try:
        orgs.create_org(hub.engine, "hotline", ["contributor"])
        orgs.create_org(hub.engine, "analyst", ["member"])
        orgs.create_list(hub.engine, "a", read=["analyst"], write=["hotline"])
        orgs.create_list(hub.engine, "b", read=["analyst"], write=["hotline"])
        hotline, analyst = orgs.acting_as(hub.engine, "hotline"), orgs.acting_as(hub.engine, "analyst")
        ids = ingest.submit(hub, hotline, "a", [_item(1, "A1"), _item(2, "B1")])
        with db.read(hub.engine) as conn:
            scope = hub_queries.scope_of(conn, analyst)
        counts = hub_queries.PoolCounts()  # what the server keeps between visits
        first = hub_queries.dashboard(hub, scope, counts=counts)
        assert first.whole and first.stats["items"] == 2 and first.by_list == {"a": 2, "b": 0}
        assert first.by_grading == {"industry A1": 1, "industry B1": 1}
        assert first.stats["by_signal"] == {"md5": 2} and first.stats["by_contributor"] == {"hotline": 2}
        assert len(first.growth) == 30 and first.growth[-1][1] == 2
        ingest.submit(hub, hotline, "b", [_item(3, "A1")])
        later = hub_queries.dashboard(hub, scope, counts=counts)
        assert later.by_list == {"a": 2, "b": 1} and later.growth[-1][1] == 3
        feedback.withdraw(hub, hotline, int(ids["items"][0]["id"]), "listed in error")
        after = hub_queries.dashboard(hub, scope, counts=counts)
        assert after.by_list == {"a": 1, "b": 1} and after.stats["by_status"]["withdrawn"] == 1
    finally:
        hub.close()
