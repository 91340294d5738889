"""Scanning folders: hash on every core (or on a Dask cluster), match and decide in this process.

Hashing is the expensive part and is independent per file, so it is what fans out; the index lives
once, in the process that owns it, and matches whole batches at a time. On Dask the workers only need
to read the files (shared storage) and run `hashhub.detect` (plain hashes plus the query variants
the policy enables); the index never leaves the client.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from hashhub.agent import decisions
from hashhub.agent.scanner import Scanner, ScanResult
from hashhub.detect import Scanned, hash_file
from hashhub.hashing import FileHashes
from hashhub.variants import PLAIN_ONLY, VariantOptions

#: files per task: large enough to amortise the hop to a worker, small enough to balance the load.
CHUNK = 32
#: files matched and recorded together.
BATCH = 256

Progress = Callable[[int], None]


class ScanPathError(ValueError):
    """A path given to scan does not exist."""


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every file under the given files and folders, in a stable (sorted) order; hidden files skipped."""
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            yield path
        elif path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield Path(root) / name
        else:
            raise ScanPathError(f"{path} does not exist (or is neither a file nor a folder).")


def hash_chunk(paths: list[str], options: VariantOptions = PLAIN_ONLY) -> list[Scanned]:
    """Hash a few files (runs in a worker process or on a Dask worker): vPDQ for videos, PDQ and
    the query variants in `options` else."""
    out = []
    for path in paths:
        try:
            out.append(hash_file(path, options))
        except OSError as exc:  # unreadable file: report it, keep scanning the rest
            out.append(Scanned(FileHashes(error=f"cannot read {path}: {exc.strerror or exc}")))
    return out


def _chunks(files: Iterable[Path], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for f in files:
        chunk.append(str(f))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _decide(scanner: Scanner, pending: list[tuple[str, Scanned]], source: str) -> list[ScanResult]:
    files, scanned = zip(*pending, strict=True)
    results = scanner.evaluate_scanned(list(files), list(scanned))
    decisions.record(scanner.store, results, source)
    return results


def _in_batches(
    scanner: Scanner, hashed: Iterator[tuple[list[str], list[Scanned]]], source: str
) -> Iterator[ScanResult]:
    pending: list[tuple[str, Scanned]] = []
    for names, results in hashed:
        pending.extend(zip(names, results, strict=True))
        if len(pending) >= BATCH:
            yield from _decide(scanner, pending, source)
            pending = []
    if pending:
        yield from _decide(scanner, pending, source)


def scan_local(
    scanner: Scanner, paths: Iterable[str | Path], *, workers: int | None = None, source: str = "cli"
) -> Iterator[ScanResult]:
    """Scan files and folders with `workers` processes (default: every core), results in file order."""
    files = iter_files(paths)
    options = scanner.policy.variants
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        chunks = _chunks(files, CHUNK)
        yield from _in_batches(scanner, ((c, hash_chunk(c, options)) for c in chunks), source)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        chunks = _chunks(files, CHUNK)
        # Keep a bounded number of chunks in flight so a million-file backlog never sits in memory.
        in_flight = []
        for chunk in chunks:
            in_flight.append((chunk, pool.submit(hash_chunk, chunk, options)))
            if len(in_flight) >= workers * 4:
                break

        def results() -> Iterator[tuple[list[str], list[Scanned]]]:
            while in_flight:
                chunk, future = in_flight.pop(0)
                nxt = next(chunks, None)
                if nxt is not None:
                    in_flight.append((nxt, pool.submit(hash_chunk, nxt, options)))
                yield chunk, future.result()

        yield from _in_batches(scanner, results(), source)


def scan_dask(
    scanner: Scanner, paths: Iterable[str | Path], address: str, *, source: str = "dask"
) -> Iterator[ScanResult]:
    """The same scan with hashing on a Dask cluster at `address` (results in completion order)."""
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # the optional extra is missing
        raise RuntimeError("Dask scans need the dask extra: pip install 'hashhub[dask]'.") from exc
    with Client(address, timeout="30s") as client:
        options = scanner.policy.variants
        futures = {
            client.submit(hash_chunk, c, options, pure=False): c for c in _chunks(iter_files(paths), CHUNK)
        }

        def results() -> Iterator[tuple[list[str], list[Scanned]]]:
            for future in as_completed(futures):
                yield futures[future], future.result()

        yield from _in_batches(scanner, results(), source)
