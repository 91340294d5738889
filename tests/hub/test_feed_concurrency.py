"""A member polling the feed while several writers commit never misses or reorders a change.

Each writer is a separate `Hub` (its own engine, pool and connections, as separate hub processes
would be) submitting, updating and withdrawing items at random; a reader pages through the feed with
a small limit the whole time. Afterwards the reader's sequence must equal the committed change log
exactly: the same cursors, in the same order, each once, with no gaps.
"""

from __future__ import annotations

import random
import threading
import time

import orjson
import pytest
import sqlalchemy as sa
from tests.hub.conftest import item, open_hub, populate

from hashhub.hub import feed, feedback, indexes, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.models import changes

WRITERS = 4
BATCHES = 8


def _writer(hub: Hub, org: str, seed: int, errors: list[BaseException]) -> None:
    rng = random.Random(seed)
    me = orgs.acting_as(hub.engine, org)
    mine: list[str] = []
    try:
        for b in range(BATCHES):
            rows = [item(f"{org}-{b}-{i}") for i in range(rng.randint(1, 15))]
            if mine and rng.random() < 0.3:  # some updates of earlier items
                rows.append(item(f"{org}-0-0", grade=rng.choice(["A1", "A2", "B1"])))
            mine += [i["id"] for i in ingest.submit(hub, me, "verified", rows)["items"]]
            if rng.random() < 0.3:
                victim = mine.pop(rng.randrange(len(mine)))
                if victim != mine[0] if mine else True:
                    try:
                        feedback.withdraw(hub, me, int(victim))
                    except Exception as exc:  # an item listed twice in `mine` may already be gone
                        if "already withdrawn" not in str(exc):
                            raise
            time.sleep(rng.random() / 100)
    except BaseException as exc:
        errors.append(exc)


@pytest.mark.slow
def test_polling_reader_sees_every_committed_change_once_in_order(db_url: str) -> None:
    indexes.warm_up()  # as `create_app` does: compile search kernels once, not in four threads at once
    setup = open_hub(db_url)
    populate(setup)
    writers = [open_hub(db_url) for _ in range(WRITERS)]
    reader = open_hub(db_url)
    member = orgs.acting_as(reader.engine, "plat")
    contributors = ["iwf", "ncmec", "both", "iwf"]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_writer, args=(h, contributors[i], i, errors)) for i, h in enumerate(writers)
    ]
    seen: list[tuple[int, str, str]] = []
    after = 0

    def poll() -> bool:
        nonlocal after
        page = orjson.loads(feed.read(reader, member, after, 7, feed.FeedFilter()))
        for c in page["changes"]:
            seen.append((c["cursor"], c["op"], c["id"] if c["op"] == "delete" else c["item"]["id"]))
        after = page["next"]
        return page["has_more"]

    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        poll()
    while poll():
        pass
    for t in threads:
        t.join()
    assert not errors, errors

    with setup.engine.connect() as conn:
        committed = [
            (r.cursor, r.op, str(r.item_id))
            for r in conn.execute(
                sa.select(changes.c.cursor, changes.c.op, changes.c.item_id).order_by(changes.c.cursor)
            )
        ]
    assert len(committed) > WRITERS * BATCHES
    assert [c for c, _, _ in committed] == list(range(1, len(committed) + 1))  # no gaps
    assert seen == committed
    for h in (setup, reader, *writers):
        h.close()
