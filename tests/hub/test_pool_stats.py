"""`Pool.stats()`: the dashboard's counts come from the pool's columns and agree with SQL counts."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from tests.hub.conftest import item, md5_of, open_hub, populate

from hashhub import db
from hashhub.hub import feedback, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.models import fingerprints, items, lists, organisations
from hashhub.hub.pool import STATS_DAYS


def _submit(hub: Hub, org: str, rows: list[dict[str, Any]], list_name: str = "verified") -> list[int]:
    done = ingest.submit(hub, orgs.acting_as(hub.engine, org), list_name, rows)
    return [int(i["id"]) for i in done["items"]]


def _sql_counts(hub: Hub, seen: Any = sa.true()) -> dict[str, Any]:
    live = items.c.status != "withdrawn"
    with db.read(hub.engine) as conn:

        def grouped(*cols: Any, join: Any = items, where: Any = live) -> dict[Any, int]:
            q = sa.select(*cols, sa.func.count()).select_from(join).where(where, seen).group_by(*cols)
            return {row[0] if len(row) == 2 else ":".join(row[:-1]): row[-1] for row in conn.execute(q)}

        return {
            "items": conn.scalar(sa.select(sa.func.count()).select_from(items).where(live, seen)),
            "by_status": grouped(items.c.status, where=sa.true()),
            "by_list": grouped(lists.c.name, join=items.join(lists, lists.c.id == items.c.list_id)),
            "by_contributor": grouped(
                organisations.c.name,
                join=items.join(organisations, organisations.c.id == items.c.contributor_id),
            ),
            "by_grade": grouped(items.c.scheme, items.c.classification),
            "by_signal": grouped(
                fingerprints.c.signal, join=fingerprints.join(items, items.c.id == fingerprints.c.item_id)
            ),
        }


def test_stats_match_sql_counts_and_have_the_dashboard_shape(sqlite_url: str) -> None:
    hub = open_hub(sqlite_url)
    try:
        populate(hub)
        iwf = _submit(hub, "iwf", [item(1), item(2, grade="B1"), item(3, md5=md5_of(3))])
        _submit(hub, "ncmec", [item(4), item(5, grade="A2")], "restricted")
        _submit(hub, "both", [item(6, reviewers=0)])
        feedback.withdraw(hub, orgs.acting_as(hub.engine, "iwf"), iwf[1], "test")
        hub.refresh()
        stats = hub.pool.stats()

        expected = _sql_counts(hub)
        assert stats["items"] == expected["items"] == 5
        assert stats["by_status"] == {"active": 5, "disputed": 0, "withdrawn": 1}
        assert expected["by_status"] == {"active": 5, "withdrawn": 1}
        for key in ("by_list", "by_contributor", "by_grade", "by_signal"):
            assert stats[key] == expected[key], key
        assert stats["by_grade"] == {"industry:A1": 4, "industry:A2": 1}
        assert stats["by_signal"] == {"md5": 5, "pdq": 4}

        per_day = stats["per_day"]
        assert len(per_day) == STATS_DAYS
        assert per_day[-1] == [time.strftime("%Y-%m-%d", time.gmtime()), 5]
        assert [c for _, c in per_day[:-1]] == [0] * (STATS_DAYS - 1)
        assert per_day == sorted(per_day)
        # Thirty days later the same items have left the window.
        later = hub.pool.stats(now=time.time() + STATS_DAYS * 86_400)
        assert sum(c for _, c in later["per_day"]) == 0
    finally:
        hub.close()


def test_stats_of_an_empty_pool(sqlite_url: str) -> None:
    hub = open_hub(sqlite_url)
    try:
        hub.refresh()
        stats = hub.pool.stats()
        assert stats["items"] == 0
        assert stats["by_status"] == {"active": 0, "disputed": 0, "withdrawn": 0}
        assert stats["by_list"] == stats["by_contributor"] == stats["by_grade"] == stats["by_signal"] == {}
        assert len(stats["per_day"]) == STATS_DAYS
    finally:
        hub.close()


def test_stats_scoped_to_what_a_visitor_may_see_match_sql_counts(sqlite_url: str) -> None:
    """A member sees counts of the lists it reads, a contributor also its own items elsewhere."""
    hub = open_hub(sqlite_url)
    try:
        populate(hub)
        _submit(hub, "iwf", [item(1), item(2, grade="B1"), item(3, md5=md5_of(3))])
        _submit(hub, "ncmec", [item(4), item(5, grade="A2")], "restricted")
        _submit(hub, "both", [item(6, reviewers=0)])
        hub.refresh()
        with db.read(hub.engine) as conn:
            list_id = dict(conn.execute(sa.select(lists.c.name, lists.c.id)).all())
            org_id = dict(conn.execute(sa.select(organisations.c.name, organisations.c.id)).all())
        scopes = [
            ({list_id["verified"]}, None, items.c.list_id == list_id["verified"]),
            (set(), org_id["ncmec"], items.c.contributor_id == org_id["ncmec"]),
            (
                {list_id["verified"]},
                org_id["ncmec"],
                sa.or_(items.c.list_id == list_id["verified"], items.c.contributor_id == org_id["ncmec"]),
            ),
            (set(), None, sa.false()),
        ]
        for lists_seen, own, where in scopes:
            stats = hub.pool.stats(lists=lists_seen, contributor=own)
            expected = _sql_counts(hub, where)
            assert stats["items"] == expected["items"], (lists_seen, own)
            for key in ("by_list", "by_contributor", "by_grade", "by_signal"):
                assert stats[key] == expected[key], (key, lists_seen, own)
        assert hub.pool.stats(lists=set())["items"] == 0
        assert hub.pool.stats()["items"] == 6
    finally:
        hub.close()
