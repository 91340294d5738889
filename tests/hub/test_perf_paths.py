"""The fast paths give the same answers as the ordinary ones: a hub process that loads a whole pool
at start-up clusters exactly as one that followed the same writes batch by batch; a write that queued
for the feed cursor is dated after the writes it queued behind (time-window readers rely on it)."""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa
from tests.hub.conftest import item, md5_of, open_hub, pdq_of, populate

from hashhub import db
from hashhub.hub import heads, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.models import items


def _submit(hub: Hub, org: str, rows: list[dict[str, Any]]) -> None:
    ingest.submit(hub, orgs.acting_as(hub.engine, org), "verified", rows)


def _describe(hub: Hub, md5: str) -> dict[str, Any]:
    hub.refresh()
    ((ids, _),) = hub.pool.near("md5", [md5], 0)
    assert len(ids) >= 1
    return hub.pool.describe(int(ids[0]), None)


def test_a_fresh_process_clusters_shared_exact_values_like_one_that_followed_along(sqlite_url: str) -> None:
    following = open_hub(sqlite_url)
    populate(following)
    following.refresh()  # this process follows every batch as it is written
    shared = md5_of("shared")
    _submit(following, "iwf", [item(1, md5=shared, pdq=pdq_of(1)), item(2)])
    _submit(following, "ncmec", [item(3, md5=shared, pdq=pdq_of(3)), item(4)])
    _submit(following, "both", [item(5, md5=shared, pdq=pdq_of(5), reviewers=0)])
    expected = _describe(following, shared)
    assert expected["cluster_size"] == 3
    assert expected["contributors"] == ["both", "iwf", "ncmec"]
    assert expected["verifications"] == 2

    fresh = open_hub(sqlite_url)  # loads all five items in one go
    try:
        got = _describe(fresh, shared)
        assert {k: got[k] for k in ("contributors", "verifications", "cluster_size")} == {
            k: expected[k] for k in ("contributors", "verifications", "cluster_size")
        }
        lone = _describe(fresh, md5_of(2))
        assert lone["cluster_size"] == 1 and lone["contributors"] == ["iwf"]
    finally:
        fresh.close()
        following.close()


def test_a_write_that_queued_for_the_cursor_is_dated_after_the_wait(db_url: str) -> None:
    hub = open_hub(db_url)
    populate(hub)
    holding = threading.Event()
    released: list[float] = []

    def hold_the_cursor() -> None:
        with db.write(hub.engine) as conn:
            heads.lock(conn, heads.CHANGES)
            holding.set()
            time.sleep(1.0)
            released.append(time.time())  # the other write can only get the cursor after this

    holder = threading.Thread(target=hold_the_cursor)
    holder.start()
    try:
        assert holding.wait(10)
        _submit(hub, "iwf", [item(1)])
        holder.join()
        with db.read(hub.engine) as conn:
            stamped = conn.execute(sa.select(items.c.updated_at, items.c.created_at)).one()
    finally:
        holder.join()
        hub.close()
    assert stamped.updated_at >= released[0]
    assert stamped.created_at == stamped.updated_at
