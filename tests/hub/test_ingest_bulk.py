"""The bulk ingest path: documents are assembled from parts rendered when rows are parsed, dedup
lookups go to the driver as plain SQL, and `hashhub hub import` parses the next batch in a second
thread while the current one is written.

None of it may change what a user sees: the same rows are accepted or rejected with the same
reasons, the same documents reach the feed, and an import that fails leaves no thread behind.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.hub.conftest import item, md5_of, pdq_of, populate

from hashhub import db, grading
from hashhub.hub import documents, feedback, heads, importer, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.errors import Forbidden, Invalid
from hashhub.hub.feed import FeedFilter, read

_labels = st.dictionaries(
    st.text(max_size=8),
    st.one_of(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none()),
    max_size=3,
)


@settings(max_examples=60, deadline=None)
@given(
    item_id=st.integers(1, 2**53),
    list_name=st.text(min_size=1, max_size=12),
    contributor=st.text(min_size=1, max_size=12),
    external=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
    labels=_labels,
    created=st.floats(0, 4e9),
    updated=st.floats(0, 4e9),
    status=st.sampled_from(["active", "disputed"]),
)
def test_assembled_documents_are_byte_for_byte_the_rendered_ones(
    item_id: int,
    list_name: str,
    contributor: str,
    external: str | None,
    labels: dict[str, Any],
    created: float,
    updated: float,
    status: str,
) -> None:
    raw = {**item(1), "external_id": external, "labels": labels}
    (row,), rejected = ingest.parse_rows([raw], dict(grading.builtin_schemes()))
    assert rejected == []
    fields = row.fields(item_id, list_name, contributor)
    rendered = documents.render(fields, status=status, created_at=created, updated_at=updated)
    head = documents.head(list_name, contributor)
    assert documents.assemble(item_id, head, row.body, status, created, updated) == rendered


def test_rows_pydantic_would_convert_are_still_converted_and_bad_ones_named(hub: Hub) -> None:
    populate(hub)
    me = orgs.acting_as(hub.engine, "iwf")
    rows: list[Any] = [
        item(1),
        {**item(2), "verification": {"reviewers": "3", "verified_at": "2026-01-02T03:04:05Z"}},
        {**item(3), "external_id": ""},  # too short: pydantic's message, with its index
        {**item(4), "labels": {"source": "hotline", "n": 2, "ok": True}},
        {**item(5), "content_type": "audio"},
        ["not", "an", "item"],
    ]
    result = ingest.submit(hub, me, "verified", rows, partial=True)
    assert [r["index"] for r in result["items"]] == [0, 1, 3]
    errors = {r["index"]: r["error"] for r in result["rejected"]}
    assert set(errors) == {2, 4, 5}
    assert errors[2].startswith("external_id") and "at least 1 character" in errors[2]
    assert errors[4].startswith("content_type")
    docs = {d["external_id"]: d for d in _feed_items(hub)}
    assert docs["ext-2"]["verification"]["reviewers"] == 3
    assert docs["ext-2"]["verification"]["verified_at"] == "2026-01-02T03:04:05Z"
    assert docs["ext-4"]["labels"] == {"source": "hotline", "n": 2, "ok": True}
    assert docs["ext-1"]["fingerprints"] == {"md5": md5_of(1), "pdq": pdq_of(1)}


def test_a_label_integer_beyond_64_bits_is_a_rejected_row_not_a_crash(hub: Hub) -> None:
    """It used to reach orjson when the document was rendered and raise TypeError (a 500)."""
    populate(hub)
    me = orgs.acting_as(hub.engine, "iwf")
    rows = [item(1), {**item(2), "labels": {"case": 2**64}}, {**item(3), "labels": {"case": -(2**63)}}]
    result = ingest.submit(hub, me, "verified", rows, partial=True)
    assert [r["index"] for r in result["items"]] == [0, 2]
    (rejected,) = result["rejected"]
    assert rejected["index"] == 1 and rejected["error"].startswith("labels")
    with pytest.raises(Invalid):
        ingest.submit(hub, me, "verified", [{**item(4), "labels": {"n": 2**63}}])


def _feed_items(hub: Hub) -> list[dict[str, Any]]:
    plat = orgs.acting_as(hub.engine, "plat")
    page = orjson.loads(read(hub, plat, 0, 1000, FeedFilter()))
    with db.read(hub.engine) as conn:
        assert page["next"] == heads.current(conn)
    cursors = [c["cursor"] for c in page["changes"]]
    assert cursors == sorted(set(cursors))  # strictly increasing
    return [c["item"] for c in page["changes"]]


def _write_ndjson(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_import_in_many_batches_numbers_rows_and_writes_each_batch_in_order(hub: Hub, tmp_path: Path) -> None:
    populate(hub)
    lines = [orjson.dumps(item(n)) for n in range(25)]
    lines[7] = b"{not json"
    lines[18] = orjson.dumps({**item(18), "classification": {"scheme": "industry", "value": "Z9"}})
    lines.append(orjson.dumps(item(3)))  # the same external id again, last: an update of row 4's item
    seen: list[int] = []
    report = importer.import_file(
        hub,
        _write_ndjson(tmp_path / "items.ndjson", lines),
        "iwf",
        "verified",
        batch_size=4,
        progress=seen.append,
    )
    assert report.rows == 26 and report.rejected_count == 2
    assert [r["row"] for r in report.rejected] == [8, 19]
    assert report.created == 23 and report.unchanged == 1
    assert seen == sorted(seen) and seen[-1] == (tmp_path / "items.ndjson").stat().st_size
    docs = _feed_items(hub)
    assert [d["external_id"] for d in docs] == [f"ext-{n}" for n in range(25) if n not in (7, 18)]


def test_a_failing_import_stops_its_parsing_thread(hub: Hub, tmp_path: Path) -> None:
    populate(hub)
    lines = [orjson.dumps(item(n)) for n in range(40)]
    lines[9] = orjson.dumps({**item(9), "fingerprints": {"md5": "xyz"}})
    path = _write_ndjson(tmp_path / "items.ndjson", lines)
    with pytest.raises(Invalid) as failed:
        importer.import_file(hub, path, "iwf", "verified", batch_size=4, strict=True)
    assert [r["index"] for r in failed.value.extra["rejected"]] == [10]
    assert [d["external_id"] for d in _feed_items(hub)] == [f"ext-{n}" for n in range(8)]
    assert not [t for t in threading.enumerate() if t.name == "hashhub-import-parse"]


def test_an_import_refused_up_front_reads_nothing(hub: Hub, tmp_path: Path) -> None:
    populate(hub)
    path = _write_ndjson(tmp_path / "items.ndjson", [orjson.dumps(item(1))])
    with pytest.raises(Forbidden, match="may not write"):
        importer.import_file(hub, path, "iwf", "restricted")
    assert _feed_items(hub) == []


def _stored(hub: Hub) -> dict[str, tuple[dict[str, str], dict[str, int] | None, str]]:
    """external id -> (fingerprints, quality, status) as the items table holds them."""
    with db.read(hub.engine) as conn:
        rows = conn.exec_driver_sql("SELECT external_id, fingerprints, quality, status FROM items").all()
    return {r[0]: (orjson.loads(r[1]), r[2] and orjson.loads(r[2]), r[3]) for r in rows}


def test_one_row_per_item_holds_its_fingerprints_and_follows_updates(hub: Hub) -> None:
    populate(hub)
    iwf = orgs.acting_as(hub.engine, "iwf")
    first = ingest.submit(hub, iwf, "verified", [{**item(1), "quality": {"pdq": 80}}, item(2)])
    assert _stored(hub) == {
        "ext-1": ({"md5": md5_of(1), "pdq": pdq_of(1)}, {"pdq": 80}, "active"),
        "ext-2": ({"md5": md5_of(2), "pdq": pdq_of(2)}, None, "active"),
    }
    # New fingerprints replace the old ones (and their quality); unchanged rows write nothing.
    again = ingest.submit(hub, iwf, "verified", [item(1, md5=md5_of(11)), item(2)])
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 1)
    assert _stored(hub)["ext-1"] == ({"md5": md5_of(11)}, None, "active")
    assert again["cursor"] == first["cursor"] + 1
    # Withdrawn, then sent again: active again, with a new change.
    feedback.withdraw(hub, iwf, int(first["items"][1]["id"]), "test")
    back = ingest.submit(hub, iwf, "verified", [item(2)])
    assert back["updated"] == 1 and _stored(hub)["ext-2"][2] == "active"
    page = orjson.loads(read(hub, orgs.acting_as(hub.engine, "plat"), 0, 100, FeedFilter()))
    assert [(c["op"], c.get("item", {}).get("external_id")) for c in page["changes"]] == [
        ("upsert", "ext-1"), ("upsert", "ext-2"), ("upsert", "ext-1"), ("delete", None), ("upsert", "ext-2"),
    ]  # fmt: skip
    latest = page["changes"][2]["item"]
    assert latest["fingerprints"] == {"md5": md5_of(11)} and "quality" not in latest


def test_new_items_get_consecutive_cursors_after_updates_of_the_same_batch(hub: Hub) -> None:
    populate(hub)
    iwf = orgs.acting_as(hub.engine, "iwf")
    ingest.submit(hub, iwf, "verified", [item(1), item(2)])
    done = ingest.submit(hub, iwf, "verified", [item(3), item(1, grade="B1"), item(4), item(3, grade="A2")])
    assert (done["created"], done["updated"]) == (2, 1)
    with db.read(hub.engine) as conn:
        rows = conn.exec_driver_sql(
            "SELECT c.cursor, i.external_id, c.kind FROM changes c JOIN items i ON i.id = c.item_id "
            "WHERE c.cursor > 2 ORDER BY c.cursor"
        ).all()
    assert [tuple(r) for r in rows] == [(3, "ext-3", "new"), (4, "ext-4", "new"), (5, "ext-1", "updated")]
    assert done["cursor"] == 5 and _stored(hub)["ext-3"][2] == "active"


def test_writing_a_batch_leaves_the_garbage_collector_as_it_found_it(hub: Hub) -> None:
    populate(hub)
    iwf = orgs.acting_as(hub.engine, "iwf")
    assert gc.isenabled()
    ingest.submit(hub, iwf, "verified", [item(1)])
    assert gc.isenabled()
    gc.disable()
    try:
        ingest.submit(hub, iwf, "verified", [item(2)])
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(Invalid):  # a failing batch restores it too
        ingest.submit(hub, iwf, "verified", [item(3), {"fingerprints": {}}])
    assert gc.isenabled()
