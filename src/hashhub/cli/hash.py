"""`hashhub hash PATH...`: fingerprint files and folders to CSV or JSON lines.

Output goes to stdout in the order the files were walked; problems go to stderr, one line a file,
and never stop the run. Exit status: 0 when every file was fully hashed, 1 when some were not
(unreadable, not an image, corrupt), 2 on bad usage (unknown signal, bad option).
"""

from __future__ import annotations

import csv
import enum
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import repeat
from multiprocessing import get_context
from typing import Annotated, TextIO

import orjson
import typer

from hashhub.hashing import DEFAULT_SIGNALS, FileHashes, Plan, hash_path, plan
from hashhub.signals import SignalError
from hashhub.walk import Entry, walk

Writer = Callable[[str, FileHashes], None]

# Each worker gets a share of files at a time: large enough to amortise inter-process traffic,
# small enough that the progress bar moves and the workers finish together.
_CHUNK = 4
# Files handed to the pool at once: the executor makes a future per chunk up front, so a run over
# millions of files goes in windows to keep memory flat.
_WINDOW = 4096


class OutputFormat(enum.StrEnum):
    csv = "csv"
    jsonl = "jsonl"


def register(app: typer.Typer) -> None:
    app.command("hash")(hash_command)


def hash_command(
    paths: Annotated[
        list[str],
        typer.Argument(help="Files and folders (folders are walked).", metavar="PATH", show_default=False),
    ],
    signals: Annotated[
        str, typer.Option("--signals", help="Comma-separated signal names to compute.")
    ] = ",".join(DEFAULT_SIGNALS),
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="csv (with a header) or jsonl (one object a file).")
    ] = OutputFormat.csv,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Processes to hash with.", show_default="all cores"),
    ] = None,
) -> None:
    """Fingerprint files and folders: md5, sha1, sha256 and PDQ by default."""
    try:
        chosen = plan(signals)
    except SignalError as exc:
        raise typer.BadParameter(str(exc), param_hint="--signals") from None
    entries = list(walk(paths))
    writer = _writer(output_format, chosen, sys.stdout)
    failed = 0
    for path, result in _progress(_hash_all(entries, chosen, workers or _cores()), len(entries)):
        if result.error is not None:
            failed += 1
            # print() looks sys.stderr up now, so a live progress bar can keep it above itself.
            print(f"hashhub hash: {path}: {result.error}", file=sys.stderr)
        writer(path, result)
    sys.stdout.flush()
    if failed:
        raise typer.Exit(1)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _hash_one(path: str, chosen: Plan) -> FileHashes:
    try:
        return hash_path(path, chosen)
    except Exception as exc:  # one file must never end a run over many; report it like bad media
        return FileHashes(error=f"unexpected error: {type(exc).__name__}: {exc}")


def _hash_all(entries: list[Entry], chosen: Plan, workers: int) -> Iterator[tuple[str, FileHashes]]:
    """(path, result) in walk order; listing errors pass through as results."""
    todo = [entry.path for entry in entries if entry.error is None]
    workers = min(workers, len(todo))
    if workers <= 1:
        results: Iterable[FileHashes] = (_hash_one(path, chosen) for path in todo)
    else:
        results = _hash_in_pool(todo, chosen, workers)
    yield from _merge(entries, results)


def _hash_in_pool(todo: list[str], chosen: Plan, workers: int) -> Iterator[FileHashes]:
    """Results in order. A worker that dies (a decoder crashing on a hostile file) breaks the pool;
    then the first file not yet done is retried alone, so the file that kills a worker is reported
    as failed and the rest go on in a fresh pool."""
    remaining = todo
    while remaining:
        done = 0
        try:
            with _pool(workers) as pool:
                while done < len(remaining):
                    window = remaining[done : done + _WINDOW]
                    for result in pool.map(_hash_one, window, repeat(chosen), chunksize=_CHUNK):
                        yield result
                        done += 1
            return
        except BrokenProcessPool:
            remaining = remaining[done:]
        yield _hash_alone(remaining[0], chosen)
        remaining = remaining[1:]


def _hash_alone(path: str, chosen: Plan) -> FileHashes:
    try:
        with _pool(1) as pool:
            return pool.submit(_hash_one, path, chosen).result()
    except BrokenProcessPool:
        return FileHashes(error="the process decoding this file crashed")


def _pool(workers: int) -> ProcessPoolExecutor:
    # forkserver: workers start from a clean process that has already imported the hashing code,
    # not a fork of this one (forking a process with threads running is unsafe).
    context = get_context("forkserver")
    context.set_forkserver_preload(["hashhub.cli.hash"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _merge(entries: list[Entry], results: Iterable[FileHashes]) -> Iterator[tuple[str, FileHashes]]:
    hashed = iter(results)
    for entry in entries:
        yield entry.path, (FileHashes(error=entry.error) if entry.error else next(hashed))


def _progress(items: Iterator[tuple[str, FileHashes]], total: int) -> Iterator[tuple[str, FileHashes]]:
    """A progress bar on stderr when a person watches it and the output goes elsewhere."""
    if not sys.stderr.isatty() or sys.stdout.isatty() or total < 2:
        yield from items
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=True, redirect_stdout=False) as bar:
        task = bar.add_task("hashing", total=total)
        for item in items:
            yield item
            bar.advance(task)


def _writer(output_format: OutputFormat, chosen: Plan, out: TextIO) -> Writer:
    columns = chosen.columns()
    if output_format is OutputFormat.jsonl:

        def write_jsonl(path: str, result: FileHashes) -> None:
            record = {"file": path, **result.to_row(chosen.names, present=True)}
            if result.error is not None:
                record["error"] = result.error
            out.write(orjson.dumps(record).decode() + "\n")

        return write_jsonl

    table = csv.writer(out, lineterminator="\n")
    table.writerow(["file", *columns])

    def write_csv(path: str, result: FileHashes) -> None:
        # CSV has no error column: a file with nothing computed has no row (stderr says why).
        if not result.hashes and not result.quality:
            return
        row = result.to_row(chosen.names)
        table.writerow([path, *("" if row[c] is None else row[c] for c in columns)])

    return write_csv
