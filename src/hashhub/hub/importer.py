"""Bulk import of CSV or NDJSON files (optionally gzipped) of any size, in batches.

NDJSON: one item a line, in the `POST /api/v1/items` item shape. CSV: the columns
`external_id,content_type,scheme,classification,reviewers,md5,sha1,sha256,pdq` (empty cells allowed;
any other column whose name is a signal type is taken as a fingerprint). Rows are numbered from 1
(the CSV header is not a row); rejected rows are reported with their number and reason.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any, BinaryIO

import orjson

from hashhub.hub import auth, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.errors import Invalid

CSV_COLUMNS = ("external_id", "content_type", "scheme", "classification", "reviewers")
_NOT_FINGERPRINTS = {*CSV_COLUMNS, "list", "labels"}


@dataclass(frozen=True)
class BadLine:
    """A line that could not be read as an item at all (its row is rejected with this reason)."""

    error: str


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    rejected_count: int = 0
    cursor: int = 0


def _decoded(raw: BinaryIO) -> BinaryIO:
    """`raw` itself, or a gzip reader over it; either way `raw.tell()` measures progress."""
    gzipped = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw) if gzipped else raw  # type: ignore[return-value]


def _csv_item(row: dict[str, str]) -> dict[str, Any]:
    reviewers = (row.get("reviewers") or "").strip()
    item: dict[str, Any] = {
        "external_id": (row.get("external_id") or "").strip() or None,
        "content_type": (row.get("content_type") or "").strip() or "image",
        "classification": {
            "scheme": (row.get("scheme") or "").strip(),
            "value": (row.get("classification") or "").strip(),
        },
        "verification": {"reviewers": int(reviewers) if reviewers.isdigit() else reviewers or 0},
        "fingerprints": {
            k: v.strip() for k, v in row.items() if k and k not in _NOT_FINGERPRINTS and v and v.strip()
        },
    }
    return item


def read_rows(stream: BinaryIO, name: str) -> Iterator[object]:
    """Items from a CSV (by `.csv` in the name) or NDJSON stream; bad JSON lines come through as text."""
    if ".csv" in name.lower():
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            for row in csv.DictReader(text):
                yield _csv_item(row)
        except UnicodeDecodeError as exc:  # a clear refusal, not a crash; rows before it stand
            raise Invalid(f"The CSV file is not UTF-8 text ({exc.reason} in a block).") from None
        finally:
            text.detach()  # leave the file open: the caller reads its position for progress
        return
    for line in stream:
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield BadLine(f"not valid JSON: {exc}")


@dataclass
class _Batch:
    """One batch as the parsing thread hands it over: rows as read, and what `parse_rows` made."""

    rows: int
    unreadable: list[dict[str, Any]]  # lines that are not JSON, by index in the batch
    readable: list[int]  # batch index of each row given to the parser
    good: list[ingest.Row]
    rejected: list[dict[str, Any]]  # indexes into `readable`
    where: ingest.Target
    position: int  # file bytes read when the batch was complete


def import_file(
    hub: Hub,
    path: Path,
    org: str,
    list_name: str | None = None,
    *,
    batch_size: int = 10_000,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Stream `path` into `list_name` as `org`; `progress(bytes_read)` after each batch.

    Reading and validating a batch (pure Python) runs in a second thread while this one writes
    the batch before it: SQLite and PostgreSQL's drivers let go of the interpreter while the
    database works, so on two cores the two overlap. Batches are still written one at a time, in
    file order, each in its own transaction, exactly as `POST /api/v1/items` would write them."""
    principal = orgs.acting_as(hub.engine, org)
    principal.require("contributor")
    list_name = list_name or _only_list(hub, principal)
    ingest.target(hub, principal, list_name)  # refuse before reading a byte
    report = ImportReport()
    with path.open("rb") as raw:
        parsed = _parsed_batches(hub, principal, list_name, raw, path.name, batch_size)
        for batch in _ahead(parsed):
            _send(hub, principal, batch, report, strict)
            if progress:
                progress(batch.position)
        if progress:
            progress(raw.tell())
    return report


def _parsed_batches(
    hub: Hub, principal: auth.Principal, list_name: str, raw: BinaryIO, name: str, size: int
) -> Iterator[_Batch]:
    rows = read_rows(_decoded(raw), name)
    while batch := list(itertools.islice(rows, size)):
        unreadable = [{"index": i, "error": r.error} for i, r in enumerate(batch) if isinstance(r, BadLine)]
        readable = [i for i, r in enumerate(batch) if not isinstance(r, BadLine)]
        where = ingest.target(hub, principal, list_name)
        good, rejected = ingest.parse_rows([batch[i] for i in readable], where.schemes)
        yield _Batch(len(batch), unreadable, readable, good, rejected, where, raw.tell())


_DONE = object()


def _ahead(source: Iterator[_Batch], depth: int = 2) -> Iterator[_Batch]:
    """`source`'s items, produced by a thread of their own up to `depth` ahead of the consumer.

    An error in the producer is raised here, in order; a consumer that stops early (an error while
    writing) stops the producer too, so no thread outlives the import."""
    queue: Queue[object] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        queue.put(item, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            queue.put(exc)

    worker = threading.Thread(target=produce, name="hashhub-import-parse", daemon=True)
    worker.start()
    try:
        while (item := queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting to put, then wait for it
            try:
                queue.get_nowait()
            except Empty:
                worker.join(0.05)


def _only_list(hub: Hub, principal: auth.Principal) -> str:
    writable = sorted(orgs.writable_lists(hub.engine, principal).values())
    if len(writable) != 1:
        raise Invalid(
            f"Organisation {principal.org!r} may write to {len(writable)} lists "
            f"({', '.join(writable) or 'none'}); choose one with --list."
        )
    return writable[0]


def _send(hub: Hub, principal: auth.Principal, batch: _Batch, report: ImportReport, strict: bool) -> None:
    start = report.rows + 1  # row number of the batch's first row
    if batch.unreadable and strict:
        raise Invalid(
            "A row could not be read; nothing of this batch was written.",
            rejected=_numbered(batch.unreadable, start),
        )
    try:
        result = ingest.submit_parsed(
            hub,
            principal,
            batch.where,
            batch.good,
            batch.rejected,
            len(batch.readable),
            partial=not strict,
            actor=f"{principal.org} (import)",
        )
    except Invalid as exc:
        rejected = [
            {"index": batch.readable[r["index"]], "error": r["error"]} for r in exc.extra.get("rejected", [])
        ]
        exc.extra["rejected"] = _numbered(rejected, start)[:100]
        raise
    rejected = batch.unreadable + [
        {"index": batch.readable[r["index"]], "error": r["error"]} for r in result["rejected"]
    ]
    report.rows += batch.rows
    report.created += result["created"]
    report.updated += result["updated"]
    report.unchanged += result["unchanged"]
    report.cursor = max(report.cursor, result["cursor"])
    report.rejected_count += len(rejected)
    for r in sorted(_numbered(rejected, start), key=lambda r: r["index"]):
        if len(report.rejected) < 100:
            report.rejected.append({"row": r["index"], "error": r["error"]})


def _numbered(rejected: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    """Batch indexes -> file row numbers (1-based, header excluded)."""
    return [{"index": r["index"] + start, "error": r["error"]} for r in rejected]
