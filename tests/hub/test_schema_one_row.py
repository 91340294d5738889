"""Storage for bulk writes. Migration 0004 (one row per item): a hub with items written under the
old schema, where each fingerprint was a row of its own, keeps every fingerprint and quality, matches
and filters them, and the migration downgrades back to the old rows (SQLite and PostgreSQL). New
SQLite files get 16 KiB pages; existing ones keep theirs."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from tests.hub.conftest import md5_of, open_hub, pdq_of

from hashhub import db
from hashhub.hub import feed, ingest, match, orgs
from hashhub.hub.models import fingerprints
from hashhub.web import hub_queries

MIGRATIONS = "hashhub:migrations"
OLD = "0003"  # the last revision with a `fingerprints` table


def _old_hub(url: str) -> dict[int, dict[str, str]]:
    """A database at the old revision with three items written the old way (item row, one row per
    fingerprint, a change row); returns the fingerprints by item id."""
    engine = db.create_engine(url)
    try:
        db.upgrade(engine, MIGRATIONS, OLD)
        orgs.create_org(engine, "iwf", ["contributor"])
        orgs.create_org(engine, "plat", ["member"])
        orgs.create_list(engine, "verified", read=["plat"], write=["iwf"])
        stored = {
            1: {"md5": md5_of(1), "pdq": pdq_of(1)},
            2: {"md5": md5_of(2)},
            3: {"pdq": pdq_of(3)},
        }
        quality = {(1, "pdq"): 90, (3, "pdq"): 55}
        now = time.time()
        with db.write(engine) as conn:
            iwf = conn.execute(sa.text("SELECT id FROM organisations WHERE name = 'iwf'")).scalar_one()
            verified = conn.execute(sa.text("SELECT id FROM lists WHERE name = 'verified'")).scalar_one()
            for item_id, fps in stored.items():
                doc = orjson.dumps({"id": str(item_id), "external_id": f"old-{item_id}", "fingerprints": fps})
                conn.execute(
                    sa.text(
                        "INSERT INTO items (id, list_id, contributor_id, external_id, content_type, scheme, "
                        "classification, reviewers, status, fp_key, created_at, updated_at, doc) VALUES "
                        "(:id, :list, :org, :ext, 'image', 'industry', 'A1', 1, 'active', :key, :now, :now, "
                        ":doc)"
                    ),
                    {"id": item_id, "list": verified, "org": iwf, "ext": f"old-{item_id}", "key": item_id,
                     "now": now, "doc": doc},
                )  # fmt: skip
                for signal, value in fps.items():
                    conn.execute(
                        sa.text("INSERT INTO fingerprints VALUES (:id, :signal, :value, :quality)"),
                        {"id": item_id, "signal": signal, "value": value,
                         "quality": quality.get((item_id, signal))},
                    )  # fmt: skip
                conn.execute(
                    sa.text("INSERT INTO changes VALUES (:c, :id, 'upsert', 'new', :now)"),
                    {"c": item_id, "id": item_id, "now": now},
                )
            conn.execute(sa.text("UPDATE heads SET value = 3 WHERE name = 'changes'"))
    finally:
        engine.dispose()
    return stored


def _columns(url: str) -> dict[int, tuple[dict[str, str], Any]]:
    engine = db.create_engine(url)
    try:
        with db.read(engine) as conn:
            rows = conn.execute(sa.text("SELECT id, fingerprints, quality FROM items ORDER BY id")).all()
    finally:
        engine.dispose()
    return {r.id: (orjson.loads(r.fingerprints), r.quality and orjson.loads(r.quality)) for r in rows}


def test_upgrade_moves_old_fingerprint_rows_into_items_and_everything_reads_them(db_url: str) -> None:
    stored = _old_hub(db_url)
    hub = open_hub(db_url)  # brings the schema to head, as every command does
    try:
        assert _columns(db_url) == {
            1: (stored[1], {"pdq": 90}),
            2: (stored[2], None),
            3: (stored[3], {"pdq": 55}),
        }
        # The old table's shape lives on as a view.
        with db.read(hub.engine) as conn:
            view = conn.execute(
                sa.select(fingerprints).order_by(fingerprints.c.item_id, fingerprints.c.signal)
            ).all()
            facts = hub_queries.item_facts(conn, 1)
        assert [tuple(r) for r in view] == [
            (1, "md5", md5_of(1), None),
            (1, "pdq", pdq_of(1), 90),
            (2, "md5", md5_of(2), None),
            (3, "pdq", pdq_of(3), 55),
        ]
        assert facts["fingerprints"] == [
            {"signal": "md5", "value": md5_of(1), "quality": None},
            {"signal": "pdq", "value": pdq_of(1), "quality": 90},
        ]
        member = orgs.acting_as(hub.engine, "plat")
        found = match.match(hub, member, [{"md5": md5_of(2)}, {"pdq": pdq_of(3)}])["results"]
        assert [[m["item"] for m in r["matches"]] for r in found] == [["2"], ["3"]]
        page = orjson.loads(feed.read(hub, member, 0, 100, feed.FeedFilter(signals=["pdq"])))
        assert [c["item"]["id"] for c in page["changes"]] == ["1", "3"]
        # Old items are updated and written next to new ones like any other.
        iwf = orgs.acting_as(hub.engine, "iwf")
        grade = {"scheme": "industry", "value": "A2"}
        done = ingest.submit(
            hub,
            iwf,
            "verified",
            [
                {"external_id": "old-2", "classification": grade, "fingerprints": {"md5": md5_of(22)}},
                {"external_id": "new-4", "classification": grade, "fingerprints": {"pdq": pdq_of(4)}},
            ],
        )
        assert (done["created"], done["updated"]) == (1, 1)
        assert _columns(db_url)[2] == ({"md5": md5_of(22)}, None)
    finally:
        hub.close()


def test_downgrade_restores_one_row_per_fingerprint(db_url: str) -> None:
    stored = _old_hub(db_url)
    engine = db.create_engine(db_url)
    try:
        db.upgrade(engine, MIGRATIONS)
        command.downgrade(db.alembic_config(engine, MIGRATIONS), OLD)
        with db.read(engine) as conn:
            rows = conn.execute(
                sa.text("SELECT item_id, signal, value, quality FROM fingerprints ORDER BY item_id, signal")
            ).all()
            columns = {c["name"] for c in sa.inspect(conn).get_columns("items")}
        assert [tuple(r) for r in rows] == [
            (1, "md5", stored[1]["md5"], None),
            (1, "pdq", stored[1]["pdq"], 90),
            (2, "md5", stored[2]["md5"], None),
            (3, "pdq", stored[3]["pdq"], 55),
        ]
        assert not {"fingerprints", "quality"} & columns
    finally:
        engine.dispose()


def test_new_sqlite_files_get_large_pages_and_old_ones_keep_theirs(tmp_path: Path) -> None:
    fresh = db.create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    old_path = tmp_path / "old.db"
    with sqlite3.connect(old_path) as raw:  # a file made before this setting, with 4 KiB pages
        raw.execute("PRAGMA page_size=4096")
        raw.execute("CREATE TABLE t (x)")
    old = db.create_engine(f"sqlite:///{old_path}")
    try:
        for engine, size in ((fresh, db.SQLITE_PAGE_SIZE), (old, 4096)):
            with db.write(engine) as conn:
                conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS u (x)")
                conn.exec_driver_sql("INSERT INTO u VALUES (1)")
                assert conn.exec_driver_sql("PRAGMA page_size").scalar() == size
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
                assert pages * size == db.WAL_AUTOCHECKPOINT_BYTES
    finally:
        fresh.dispose()
        old.dispose()
