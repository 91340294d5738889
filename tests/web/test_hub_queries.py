"""The pages' own queries on SQLite and PostgreSQL: what each visitor may count and list."""

from __future__ import annotations

import hashlib

from hashhub import db
from hashhub.hub import feedback, ingest, orgs
from hashhub.web import hub_queries
from tests.hub.conftest import db_url, open_hub

__all__ = ["db_url"]  # the hub tests' fixture: a fresh SQLite file or PostgreSQL database


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
            changes = hub_queries.recent_changes(conn, member_scope, None)
            disputed = hub_queries.disputed(conn, hotline.org_id, None)
            facts = hub_queries.item_facts(conn, ids[0])
        seen = hub_queries.dashboard(hub.engine, member_scope)
        assert seen["total"] == 3 and seen["by_status"] == {"active": 1, "disputed": 1, "withdrawn": 1}
        assert seen["by_list"] == {"shared": {"active": 1, "disputed": 1, "withdrawn": 1}}
        assert seen["by_grading"] == {"industry A1": 1, "industry B1": 1}  # live items only
        assert seen["by_signal"] == {"md5": 2} and seen["by_contributor"] == {"hotline": 2}
        assert len(seen["growth"]) == hub_queries.GROWTH_DAYS and seen["growth"][-1][1] == 3
        assert hub_queries.dashboard(hub.engine, own_scope)["total"] == 4  # its own private item too

        assert changes[0]["op"] == "delete" and changes[0]["item_id"] == ids[1]
        assert {c["list"] for c in changes} == {"shared"}
        assert [(r["id"], r["reasons"]) for r in disputed] == [(ids[0], {"wrong_grade": 1})]
        assert facts["contributor"] == "hotline" and facts["fingerprints"][0]["signal"] == "md5"
        assert [h["kind"] for h in facts["history"]] == ["disputed", "new"]
    finally:
        hub.close()
