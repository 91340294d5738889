"""`hashhub hub import` with its parsing in a process of its own (what big files get): the same
rows accepted and rejected with the same row numbers and reasons as the in-thread parser, the
grading schemes read afresh as it goes, errors raised in order, and no process left behind.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.hub.conftest import item, populate

from hashhub import db
from hashhub.hub import grouped, heads, importer, orgs
from hashhub.hub.core import Hub
from hashhub.hub.errors import Invalid
from hashhub.hub.feed import FeedFilter, read


def _feed(hub: Hub) -> list[dict[str, Any]]:
    page = orjson.loads(read(hub, orgs.acting_as(hub.engine, "plat"), 0, 10_000, FeedFilter()))
    with db.read(hub.engine) as conn:
        assert page["next"] == heads.current(conn)
    return [c["item"] for c in page["changes"]]


def _mixed_lines() -> list[bytes]:
    """Good rows, rows only the full path accepts, and bad rows of every kind, in one file."""
    lines = [orjson.dumps(item(n)) for n in range(30)]
    lines[2] = b"{not json"
    lines[5] = orjson.dumps({**item(5), "classification": {"scheme": "industry", "value": "Z9"}})
    lines[6] = orjson.dumps({**item(6), "fingerprints": {"md5": "xyz"}})
    lines[9] = orjson.dumps(
        {**item(9), "verification": {"reviewers": "2", "verified_at": "2026-01-02T03:04:05Z"}}
    )
    lines[11] = orjson.dumps({**item(11), "fingerprints": {"MD5": item(11)["fingerprints"]["md5"].upper()}})
    lines[14] = orjson.dumps({**item(14), "external_id": ""})
    lines[17] = orjson.dumps(["not", "an", "item"])
    lines[21] = json.dumps({**item(21), "labels": {"n": 2**63}}).encode()  # past what orjson renders
    lines[22] = orjson.dumps({**item(22), "quality": {"pdq": 90}})
    lines[25] = orjson.dumps({**item(25), "content_type": "audio"})
    lines.append(orjson.dumps(item(3)))  # row 4's external id again: the same item, unchanged
    return lines


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_parsing_in_a_process_reports_and_writes_exactly_what_the_thread_does(
    hub: Hub, tmp_path: Path
) -> None:
    populate(hub)
    path = _write(tmp_path / "items.ndjson", _mixed_lines())
    by_thread = importer.import_file(hub, path, "iwf", "verified", batch_size=4, parse_process=False)
    seen: list[int] = []
    by_process = importer.import_file(
        hub, path, "ncmec", "verified", batch_size=4, parse_process=True, progress=seen.append
    )
    assert by_process.rejected == by_thread.rejected
    assert [r["row"] for r in by_process.rejected] == [3, 6, 7, 15, 18, 22, 26]
    assert (by_process.rows, by_process.created, by_process.unchanged) == (31, 23, 1)
    assert (by_thread.rows, by_thread.created, by_thread.unchanged) == (31, 23, 1)
    assert seen == sorted(seen) and seen[-1] == path.stat().st_size
    thread_feed = [d for d in _feed(hub) if d["contributor"] == "iwf"]
    process_feed = [d for d in _feed(hub) if d["contributor"] == "ncmec"]
    assert len(process_feed) == len(thread_feed) == 23

    def comparable(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if k not in ("id", "contributor", "created_at", "updated_at")}

    assert [comparable(d) for d in process_feed] == [comparable(d) for d in thread_feed]
    assert not mp.active_children()


def test_a_strict_import_failing_in_a_process_writes_earlier_batches_and_stops_the_process(
    hub: Hub, tmp_path: Path
) -> None:
    populate(hub)
    lines = [orjson.dumps(item(n)) for n in range(40)]
    lines[9] = orjson.dumps({**item(9), "fingerprints": {"md5": "xyz"}})
    path = _write(tmp_path / "items.ndjson", lines)
    with pytest.raises(Invalid) as failed:
        importer.import_file(hub, path, "iwf", "verified", batch_size=4, strict=True, parse_process=True)
    assert [r["index"] for r in failed.value.extra["rejected"]] == [10]
    assert [d["external_id"] for d in _feed(hub)] == [f"ext-{n}" for n in range(8)]
    assert not mp.active_children()


def test_an_error_in_the_parse_process_reaches_the_caller_in_order(hub: Hub, tmp_path: Path) -> None:
    populate(hub)
    header = ",".join((*importer.CSV_COLUMNS, "md5", "sha1", "sha256", "pdq")) + "\n"
    good = "".join(f"ext-{n},image,industry,A1,1,{item(n)['fingerprints']['md5']},,,\n" for n in range(400))
    path = tmp_path / "items.csv"
    path.write_bytes(header.encode() + good.encode() + b"\xff\xfe,image\n")  # not UTF-8 at the end
    written = {}
    for org, in_process in (("iwf", False), ("ncmec", True)):
        with pytest.raises(Invalid, match="not UTF-8") as failed:
            importer.import_file(hub, path, org, "verified", batch_size=50, parse_process=in_process)
        written[org] = len([d for d in _feed(hub) if d["contributor"] == org])
        assert str(failed.value) == "The CSV file is not UTF-8 text (invalid start byte in a block)."
    assert written["iwf"] == written["ncmec"] > 0  # whole batches read before the bad block stand
    assert not mp.active_children()


def test_a_parse_process_that_dies_is_a_clear_error_not_a_hang(hub: Hub, tmp_path: Path) -> None:
    populate(hub)
    # Batches far bigger than a pipe's buffer: the process cannot have sent the whole file ahead.
    path = _write(tmp_path / "items.ndjson", [orjson.dumps(item(n)) for n in range(3000)])

    def kill_the_parser(_done: int) -> None:
        for child in mp.active_children():
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]

    with pytest.raises(RuntimeError, match="parse process stopped unexpectedly"):
        importer.import_file(
            hub, path, "iwf", "verified", batch_size=500, parse_process=True, progress=kill_the_parser
        )
    assert not mp.active_children()


def test_a_scheme_added_during_an_import_applies_to_batches_parsed_after_it(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(hub)
    # Other writers get in between the import's commits; commit after every batch here, so the
    # progress callback (which runs in the import's own thread) can add the scheme at once.
    monkeypatch.setattr(grouped, "GROUP_SECONDS", 0)
    # Batches bigger than a pipe's buffer: a parse process is at most a batch or two ahead.
    lines = [orjson.dumps(item(n)) for n in range(3000)]
    for n in (0, 2999):  # in the first batch and in the last (parsed long after the scheme exists)
        lines[n] = orjson.dumps({**item(n), "classification": {"scheme": "local", "value": "X"}})
    path = _write(tmp_path / "items.ndjson", lines)
    added: list[int] = []

    def add_scheme(_done: int) -> None:
        if not added:
            orgs.add_scheme(hub.engine, "local", {"values": ["X"]})
            added.append(1)

    report = importer.import_file(
        hub, path, "iwf", "verified", batch_size=300, parse_process=True, progress=add_scheme
    )
    assert [r["row"] for r in report.rejected] == [1]
    assert "local" in report.rejected[0]["error"]
    assert report.created == 2999


def test_a_process_with_other_threads_starts_its_parser_fresh_and_gets_the_same_result(
    hub: Hub, tmp_path: Path
) -> None:
    """Forking a process whose other threads may hold locks is unsafe: with another thread alive
    (a progress bar's, a server's) the parse process is spawned instead, with the same outcome."""
    populate(hub)
    path = _write(tmp_path / "items.ndjson", _mixed_lines())
    release = threading.Event()
    bystander = threading.Thread(target=release.wait)
    bystander.start()
    try:
        report = importer.import_file(hub, path, "iwf", "verified", batch_size=4, parse_process=True)
    finally:
        release.set()
        bystander.join()
    assert [r["row"] for r in report.rejected] == [3, 6, 7, 15, 18, 22, 26]
    assert (report.rows, report.created, report.unchanged) == (31, 23, 1)
    assert not mp.active_children()


def test_several_parse_processes_taking_turns_keep_file_order_and_error_order(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(hub)
    monkeypatch.setattr(importer, "PARSE_PROCESSES", 3)
    path = _write(tmp_path / "items.ndjson", _mixed_lines())
    report = importer.import_file(hub, path, "iwf", "verified", batch_size=4, parse_process=True)
    assert [r["row"] for r in report.rejected] == [3, 6, 7, 15, 18, 22, 26]
    assert (report.rows, report.created, report.unchanged) == (31, 23, 1)
    assert [d["external_id"] for d in _feed(hub)] == [
        f"ext-{n}" for n in range(30) if n not in (2, 5, 6, 14, 17, 21, 25)
    ]
    header = ",".join((*importer.CSV_COLUMNS, "md5", "sha1", "sha256", "pdq")) + "\n"
    good = "".join(f"csv-{n},image,industry,A1,1,{item(n)['fingerprints']['md5']},,,\n" for n in range(400))
    bad = tmp_path / "items.csv"
    bad.write_bytes(header.encode() + good.encode() + b"\xff\xfe,image\n")
    with pytest.raises(Invalid, match="not UTF-8"):
        importer.import_file(hub, bad, "ncmec", "verified", batch_size=50, parse_process=True)
    written = [d["external_id"] for d in _feed(hub) if d["contributor"] == "ncmec"]
    assert written == [f"csv-{n}" for n in range(len(written))] and len(written) % 50 == 0
    assert not mp.active_children()
