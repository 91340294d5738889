"""Identical resubmissions are found through `item_fp_keys` (migration 0005), an index that is only
ever added to: an entry whose item has since changed fingerprints or been withdrawn must never
match, and a database migrated from 0004 finds its existing items by fingerprints at once.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import sqlalchemy as sa
from alembic import command
from tests.hub.conftest import item, md5_of, open_hub, pdq_of, populate

from hashhub import db
from hashhub.hub import feedback, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.rows import fingerprint_key

MIGRATIONS = "hashhub:migrations"


def _ids(result: dict[str, object]) -> list[int]:
    return [int(r["id"]) for r in result["items"]]  # type: ignore[attr-defined,index]


def test_an_item_whose_fingerprints_changed_claims_its_new_ones_only(hub: Hub) -> None:
    populate(hub)
    iwf = orgs.acting_as(hub.engine, "iwf")
    (first,) = _ids(ingest.submit(hub, iwf, "verified", [item(1)]))
    ingest.submit(hub, iwf, "verified", [item(1, md5=md5_of(11))])  # ext-1 now has other fingerprints
    old_ones = {**item(1), "external_id": "ext-other"}
    (second,) = _ids(ingest.submit(hub, iwf, "verified", [old_ones]))
    assert second != first  # the old fingerprints' index entry is stale: a new item
    new_ones = {**item(1, md5=md5_of(11)), "external_id": "ext-third"}
    assert _ids(ingest.submit(hub, iwf, "verified", [new_ones])) == [first]


def test_a_withdrawn_item_is_not_an_identical_resubmission(hub: Hub) -> None:
    populate(hub)
    iwf = orgs.acting_as(hub.engine, "iwf")
    (first,) = _ids(ingest.submit(hub, iwf, "verified", [item(1, external=False)]))
    assert _ids(ingest.submit(hub, iwf, "verified", [item(1, external=False)])) == [first]
    feedback.withdraw(hub, iwf, first, "test")
    (second,) = _ids(ingest.submit(hub, iwf, "verified", [item(1, external=False)]))
    assert second != first


def test_items_written_before_migration_0005_are_found_by_their_fingerprints(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    engine = db.create_engine(url)
    fps = {"md5": md5_of(1), "pdq": pdq_of(1)}
    try:
        db.upgrade(engine, MIGRATIONS, "0004")
        orgs.create_org(engine, "iwf", ["contributor"])
        orgs.create_list(engine, "verified", write=["iwf"])
        with db.write(engine) as conn:
            iwf = conn.execute(sa.text("SELECT id FROM organisations WHERE name = 'iwf'")).scalar_one()
            listed = conn.execute(sa.text("SELECT id FROM lists WHERE name = 'verified'")).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO items (id, list_id, contributor_id, external_id, content_type, scheme, "
                    "classification, reviewers, status, fp_key, created_at, updated_at, doc, fingerprints) "
                    "VALUES (7, :list, :org, 'old-7', 'image', 'industry', 'A1', 1, 'active', :key, :now, "
                    ":now, :doc, :fps)"
                ),
                {"list": listed, "org": iwf, "key": fingerprint_key(fps), "now": time.time(),
                 "doc": orjson.dumps({"id": "7"}), "fps": orjson.dumps(fps).decode()},
            )  # fmt: skip
    finally:
        engine.dispose()
    hub = open_hub(url)  # migrates to head
    try:
        with db.read(hub.engine) as conn:
            entries = conn.exec_driver_sql("SELECT contributor_id, fp_key, item_id FROM item_fp_keys").all()
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes("items")}
        assert [tuple(e) for e in entries] == [(iwf, fingerprint_key(fps), 7)]
        assert "ix_items_contributor_fp_key" not in indexes
        iwf_principal = orgs.acting_as(hub.engine, "iwf")
        resent = {**item(1), "external_id": "new-name"}
        assert _ids(ingest.submit(hub, iwf_principal, "verified", [resent])) == [7]
    finally:
        hub.close()
    engine = db.create_engine(url)
    try:
        command.downgrade(db.alembic_config(engine, MIGRATIONS), "0004")  # and back: the index on items
        with db.read(engine) as conn:
            assert "ix_items_contributor_fp_key" in {i["name"] for i in sa.inspect(conn).get_indexes("items")}
            assert "item_fp_keys" not in sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
