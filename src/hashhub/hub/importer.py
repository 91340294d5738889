"""Bulk import of CSV or NDJSON files (optionally gzipped) of any size, in batches.

NDJSON: one item a line, in the `POST /api/v1/items` item shape. CSV: the columns
`external_id,content_type,scheme,classification,reviewers,md5,sha1,sha256,pdq` (empty cells allowed;
any other column whose name is a signal type is taken as a fingerprint). Rows are numbered from 1
(the CSV header is not a row); rejected rows are reported with their number and reason.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import gzip
import io
import itertools
import multiprocessing as mp
import operator
import os
import pickle
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any, BinaryIO

import orjson
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from hashhub import db, grading, lifeline
from hashhub.hub import auth, gcpause, grouped, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.errors import HubError, Invalid
from hashhub.hub.rows import ROW_FIELDS, Row, parse_rows

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
    return map(_item_of, _records(stream, name))


def _records(stream: BinaryIO, name: str) -> Iterator[object]:
    """A CSV file's items, or an NDJSON file's non-blank lines as bytes, which `_item_of` decodes
    (a parse process skips the batches another one takes without decoding them)."""
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
        if line.strip():
            yield line


def _item_of(record: object) -> object:
    if type(record) is not bytes:
        return record
    try:
        return orjson.loads(record)
    except orjson.JSONDecodeError as exc:
        return BadLine(f"not valid JSON: {exc}")


@dataclass
class ParsedBatch:
    """One batch as the parser hands it over: rows as read, and what `parse_rows` made of them."""

    rows: int
    unreadable: list[dict[str, Any]]  # lines that are not JSON, by index in the batch
    readable: list[int]  # batch index of each row given to the parser
    good: list[Row]
    rejected: list[dict[str, Any]]  # indexes into `readable`
    position: int  # file bytes read when the batch was complete


#: Files at least this big are parsed in processes of their own (below it, a thread): starting one
#: costs a few milliseconds, which a file of tens of thousands of rows repays many times over.
PROCESS_FROM_BYTES = 4 << 20
#: Parse processes taking turns at batches (each blocks, one batch ready, when ahead). One: on
#: the 2-core machine two did not make the import faster (A/B over 200,000 items, three runs
#: each at load 2.4-3.2: 16,482-23,376 items/s with two, 18,482-29,221 with one), though they
#: raise the parse side alone; more cores may want more.
PARSE_PROCESSES = 1


def import_file(
    hub: Hub,
    path: Path,
    org: str,
    list_name: str | None = None,
    *,
    batch_size: int = 10_000,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    parse_process: bool | None = None,
) -> ImportReport:
    """Stream `path` into `list_name` as `org`; `progress(bytes_read)` after each batch (it may
    run inside an open write transaction: it must not write to the database itself).

    Reading and validating batches runs ahead of the writer: for files of `PROCESS_FROM_BYTES` or
    more (or with `parse_process=True`) in `PARSE_PROCESSES` processes of their own, so parsing and
    writing never compete for one interpreter lock; otherwise in a thread. Batches are written
    one at a time, in file order, as `POST /api/v1/items` would write them, but committed in
    groups of about a second's work (`hashhub.hub.grouped`): a failure keeps the groups before
    it, and running the import again writes the rest. Grants are checked again for every batch,
    and the grading schemes are read afresh for every batch the parser takes on."""
    principal = orgs.acting_as(hub.engine, org)
    principal.require("contributor")
    list_name = list_name or _only_list(hub, principal)
    ingest.target(hub, principal, list_name)  # refuse before reading a byte
    report = ImportReport()
    # An in-memory database has one connection, which the grant check between batches needs.
    group = grouped.Group(
        hub.engine, 0 if _own_engine_url(hub) is None else grouped.GROUP_SECONDS, grouped.GROUP_ROWS
    )
    batches = parse_file(hub, path, batch_size, in_process=parse_process)
    try:
        with _collected_between_batches() as batch_done:
            for batch in batches:
                where = ingest.target(hub, principal, list_name)
                _send(hub, principal, where, batch, report, strict, group.connection())
                group.written(batch.rows)
                batch_done()
                if progress:
                    progress(batch.position)
        group.commit()
    except HubError:
        group.commit()  # refused before that batch wrote a row: the batches before it stand
        raise
    except BaseException as exc:
        group.rollback(exc)
        raise
    finally:
        batches.close()  # stops the parser if the writer stopped first
    if progress:
        progress(path.stat().st_size)
    return report


def parse_file(
    hub: Hub, path: Path, batch_size: int = 10_000, *, in_process: bool | None = None
) -> Generator[ParsedBatch, None, None]:
    """`path`'s batches, parsed ahead of the consumer: in processes of their own (`in_process`; by
    default for files of `PROCESS_FROM_BYTES` or more) or in a thread. Close it to stop early."""
    url = _own_engine_url(hub)
    if in_process is None:
        in_process = path.stat().st_size >= PROCESS_FROM_BYTES and url is not None
    if in_process:
        if url is None:
            raise ValueError("An in-memory database cannot be read by another process.")
        return _parsed_in_processes(path, batch_size, url, PARSE_PROCESSES)
    return _ahead(parse_batches(path, batch_size, _schemes_from(hub.engine)))


def parse_batches(
    path: Path,
    size: int,
    schemes: Callable[[], dict[str, grading.Scheme]],
    share: tuple[int, int] = (0, 1),
) -> Iterator[ParsedBatch]:
    """`path`'s rows, read and parsed `size` at a time (`schemes()` is asked once a batch).

    `share=(k, n)`: only batches k, k + n, k + 2n, ... (the others are read past, not decoded)."""
    mine, every = share
    with path.open("rb") as raw:
        records = _records(_decoded(raw), path.name)
        for number in itertools.count():
            chunk = list(itertools.islice(records, size))
            if not chunk:
                return
            if number % every != mine:
                continue
            batch = [_item_of(r) for r in chunk]
            unreadable = [
                {"index": i, "error": r.error} for i, r in enumerate(batch) if isinstance(r, BadLine)
            ]
            readable = [i for i, r in enumerate(batch) if not isinstance(r, BadLine)]
            good, rejected = parse_rows([batch[i] for i in readable], schemes())
            yield ParsedBatch(len(batch), unreadable, readable, good, rejected, raw.tell())


def _schemes_from(engine: Engine) -> Callable[[], dict[str, grading.Scheme]]:
    def schemes() -> dict[str, grading.Scheme]:
        with db.read(engine) as conn:
            return orgs.load_schemes(conn)

    return schemes


def _own_engine_url(hub: Hub) -> str | None:
    """The URL another process opens the hub's database with; None for an in-memory database,
    which no other process can see."""
    url = hub.engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


_COLLECT_EVERY = 16  # batches between garbage collections while importing


@contextlib.contextmanager
def _collected_between_batches() -> Iterator[Callable[[], None]]:
    """Automatic garbage collection paused (`gcpause`), a full collection every `_COLLECT_EVERY`
    batches instead (call the function given after each batch): the few cycles a batch leaves are
    still collected, a few batches later."""
    batches = itertools.count(1)

    def batch_done() -> None:
        if next(batches) % _COLLECT_EVERY == 0:
            gc.collect()

    with gcpause.paused():
        yield batch_done


_DONE = object()


def _ahead(source: Iterator[ParsedBatch], depth: int = 2) -> Generator[ParsedBatch, None, None]:
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


# -- the parse process ---------------------------------------------------------------------------
# Rows cross the pipe as plain tuples, not pickled `Row`s: the dataclass's pickling costs the
# parser 7 us a row against 3 for tuples, and the writer rebuilds a `Row` from one in about 1 us.
_ROW_STATE = operator.attrgetter(*ROW_FIELDS)


def _parsed_in_processes(
    path: Path, size: int, url: str, processes: int
) -> Generator[ParsedBatch, None, None]:
    """`parse_batches` run by `processes` child processes taking turns (batch i is child i mod n's).

    Each child sends a batch as soon as it is parsed and then blocks until this side takes it,
    so while batch i is written the next `processes` batches are parsed or ready. An error in a
    child is raised here, in order (every child reads the whole file, so a read error reaches the
    child whose turn it is, too); a child that dies without a word is an error too; no child
    outlives this."""
    # fork starts in milliseconds with everything imported; only a process with other threads
    # (whose locks a fork could copy held) pays for a fresh interpreter.
    method = "fork" if threading.active_count() == 1 and "fork" in mp.get_all_start_methods() else "spawn"
    context = mp.get_context(method)
    children: list[BaseProcess] = []
    receivers: list[Connection] = []
    try:
        for k in range(processes):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(
                target=_parse_worker,
                args=(str(path), size, url, send, (k, processes), os.getpid()),
                name=f"hashhub-import-parse-{k}",
                daemon=True,
            )
            child.start()
            send.close()  # the child holds the only writing end: its death is an EOF here
            children.append(child)
            receivers.append(receive)
        for number in itertools.count():
            batch = _received(receivers[number % processes], children[number % processes])
            if batch is None:
                return
            yield batch
    finally:
        for receive in receivers:
            receive.close()
        for child in children:
            if child.is_alive():
                child.terminate()  # pure reading and parsing: nothing to lose
            child.join()


def _received(receive: Connection, child: BaseProcess) -> ParsedBatch | None:
    """The child's next batch; None when it has read the whole file; its error raised."""
    try:
        message = receive.recv_bytes()
    except (EOFError, OSError):  # closed between messages, or during one
        raise RuntimeError(
            f"The import's parse process stopped unexpectedly (exit code {child.exitcode})."
        ) from None
    with gcpause.paused():  # no automatic passes while a batch is rebuilt
        kind, body = pickle.loads(message)
        if kind == "error":
            raise body
        if kind == "done":
            return None
        rows, unreadable, readable, good, rejected, position = body
        return ParsedBatch(rows, unreadable, readable, [Row(*t) for t in good], rejected, position)


def _unmemoised(message: object) -> bytes:
    """`message` pickled without pickle's memo: a batch is ten thousand acyclic tuples, and
    remembering each of their objects in case it recurs cost the parse process, the import's
    busier side, 2.5 us a row against 0.7 (the writer unpickles in 1.5 us a row against 1.2;
    shared objects, such as the parser's one empty mapping, arrive as copies)."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo; safe for data without cycles, which parsed JSON never has
    pickler.dump(message)
    return out.getvalue()


def _parse_worker(
    path: str, size: int, url: str, out: Connection, share: tuple[int, int], parent: int
) -> None:
    """A parse process: read `path`, parse its share of batches, send each, then ("done", None)."""
    # A forked child also holds the read end of its pipe: were the import killed, its next send
    # would block for ever instead of failing. It goes with the import instead.
    lifeline.die_with(parent)
    engine = db.create_engine(url, poolclass=NullPool)
    try:
        with _collected_between_batches() as batch_done:
            for batch in parse_batches(Path(path), size, _schemes_from(engine), share):
                good = [_ROW_STATE(r) for r in batch.good]
                body = (batch.rows, batch.unreadable, batch.readable, good, batch.rejected, batch.position)
                out.send_bytes(_unmemoised(("batch", body)))
                batch_done()
        out.send_bytes(pickle.dumps(("done", None)))
    except BaseException as exc:  # the parent raises it in order, as if parsed there
        try:
            message = pickle.dumps(("error", exc))
        except Exception:  # an exception that will not pickle still reaches the parent, as text
            message = pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
        with contextlib.suppress(OSError):  # the parent may have gone
            out.send_bytes(message)
    finally:
        out.close()
        engine.dispose()


def _only_list(hub: Hub, principal: auth.Principal) -> str:
    writable = sorted(orgs.writable_lists(hub.engine, principal).values())
    if len(writable) != 1:
        raise Invalid(
            f"Organisation {principal.org!r} may write to {len(writable)} lists "
            f"({', '.join(writable) or 'none'}); choose one with --list."
        )
    return writable[0]


def _send(
    hub: Hub,
    principal: auth.Principal,
    where: ingest.Target,
    batch: ParsedBatch,
    report: ImportReport,
    strict: bool,
    conn: SAConnection,
) -> None:
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
            where,
            batch.good,
            batch.rejected,
            len(batch.readable),
            partial=not strict,
            actor=f"{principal.org} (import)",
            conn=conn,
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
