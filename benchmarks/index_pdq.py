"""PDQ index benchmark: hashhub PdqIndex against faiss IndexBinaryFlat and IndexBinaryMultiHash(256, 16, 16).

    .venv/bin/python benchmarks/index_pdq.py --size 1000000 --size 3500000

For each size, one JSON line: per data set (uniform random codes; clustered: N/100 centres with 100
near-copies each at 0-40 bit flips) and per engine: build seconds, resident memory added (MB),
single-query p50/p99 (ms), batched queries/s, and recall / precision at radius 31 against faiss
IndexBinaryFlat (exhaustive, so exact). MultiHash is configured as HMA/python-threatexchange use it
(nflip = radius // 16, which makes it exact at R=31). Queries: stored codes with 0-20 bits flipped
(three quarters) and unrelated random codes (one quarter). All engines see the same data and queries.
Needs the `bench` extra (faiss-cpu, psutil). Timings are wall clock on a shared machine: see load_avg.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

try:
    import faiss
    import psutil
except ImportError as exc:  # pragma: no cover - a usage error, reported plainly
    sys.exit(f"benchmarks/index_pdq.py needs the bench extra (pip install -e '.[bench]'): {exc}")

from hashhub.index import PdqIndex, _pdq_segment

RADIUS = 31
Results = list[set[int]]


def flip_bits(
    rng: np.random.Generator, codes: np.ndarray, max_flips: int, chunk: int = 500_000
) -> np.ndarray:
    """Each row with up to `max_flips` random bits inverted (positions drawn with replacement)."""
    out = codes.copy()
    for start in range(0, codes.shape[0], chunk):
        rows = out[start : start + chunk]
        n = rows.shape[0]
        flips = rng.integers(0, max_flips + 1, n)
        pos = rng.integers(0, 256, (n, max(max_flips, 1)))
        mask = np.zeros((n, 256), np.uint8)
        use = np.arange(pos.shape[1])[None, :] < flips[:, None]
        mask[np.repeat(np.arange(n), use.sum(axis=1)), pos[use]] = 1
        rows ^= np.packbits(mask, axis=1)
    return out


def make_data(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "uniform":
        return rng.integers(0, 256, (n, 32), dtype=np.uint8)
    centres = rng.integers(0, 256, (max(1, n // 100), 32), dtype=np.uint8)
    return flip_bits(rng, np.repeat(centres, 100, axis=0)[:n], 40)


def make_queries(codes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    near = flip_bits(rng, codes[rng.integers(0, codes.shape[0], n - n // 4)], 20)
    return np.concatenate([near, rng.integers(0, 256, (n // 4, 32), dtype=np.uint8)])[rng.permutation(n)]


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 1e6


class Engine:
    name = ""

    def build(self, ids: np.ndarray, codes: np.ndarray) -> None: ...
    def search(self, queries: np.ndarray) -> Results: ...
    def search_one(self, query: np.ndarray) -> None: ...


class Hashhub(Engine):
    name = "hashhub"

    def build(self, ids: np.ndarray, codes: np.ndarray) -> None:
        self.ix = PdqIndex()
        self.ix.add(ids, codes)

    def search(self, queries: np.ndarray) -> Results:
        return [set(m[0].tolist()) for m in self.ix.search(queries, RADIUS)]

    def search_one(self, query: np.ndarray) -> None:
        self.ix.search_one(query, RADIUS)

    def nbytes(self) -> int:
        """Bytes of every array the index holds (codes, ids, tombstones, tables)."""
        main = self.ix._main
        tables = main.tables.nbytes if main.tables is not None else 0
        return main.ids.nbytes + main.codes.nbytes + main.alive.nbytes + tables


class FaissEngine(Engine):
    def make(self) -> Any:
        raise NotImplementedError

    def build(self, ids: np.ndarray, codes: np.ndarray) -> None:
        self.ids = ids
        self.index = self.make()
        self.index.add(codes)

    def search(self, queries: np.ndarray) -> Results:
        # faiss returns distances strictly below the radius it is given.
        lims, _, labels = self.index.range_search(queries, RADIUS + 1)
        return [set(self.ids[labels[lims[i] : lims[i + 1]]].tolist()) for i in range(queries.shape[0])]

    def search_one(self, query: np.ndarray) -> None:
        self.index.range_search(query[None, :], RADIUS + 1)


class FaissFlat(FaissEngine):
    name = "faiss_flat"

    def make(self) -> Any:
        return faiss.IndexBinaryFlat(256)


class FaissMultiHash(FaissEngine):
    name = "faiss_multihash"

    def make(self) -> Any:
        index = faiss.IndexBinaryMultiHash(256, 16, 16)
        index.nflip = RADIUS // 16  # as python-threatexchange's PDQMultiHashIndex sets it
        return index


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def measure(engine: Engine, ids: np.ndarray, codes: np.ndarray, queries: np.ndarray, singles: int) -> dict:
    before = rss_mb()
    build_s, _ = timed(lambda: engine.build(ids, codes))
    memory = rss_mb() - before
    engine.search_one(queries[0])  # first call outside the timings
    lat = []
    for q in queries[:singles]:
        t, _ = timed(lambda q=q: engine.search_one(q))
        lat.append(t)
    batch_s, found = timed(lambda: engine.search(queries))
    res = {
        "build_s": round(build_s, 2),
        "memory_mb": round(memory, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1),
        "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 3),
        "batch_qps": round(queries.shape[0] / batch_s, 1),
        "batch_queries": int(queries.shape[0]),
        "_found": found,
    }
    if isinstance(engine, Hashhub):
        res["index_arrays_mb"] = round(engine.nbytes() / 1e6, 1)
    return res


def apart(fn: Callable[..., dict], *args: Any) -> dict:
    """fn(*args) in a forked child: memory figures then count one engine alone, not what an earlier
    one freed to the allocator (the data arrays are shared, already resident pages), and no thread
    pool (the index's, faiss's OpenMP) is ever started in this parent, which keeps fork() safe."""
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe(duplex=False)

    def child() -> None:
        child_end.send(fn(*args))

    proc = ctx.Process(target=child)
    proc.start()
    result = parent_end.recv()
    proc.join()
    return result


def score(found: Results, truth: Results) -> dict:
    hits = sum(len(f & t) for f, t in zip(found, truth, strict=False))
    total_truth = sum(len(t) for t in truth[: len(found)])
    total_found = sum(len(f) for f in found[: len(truth)])
    return {
        "recall": round(hits / total_truth, 6) if total_truth else 1.0,
        "precision": round(hits / total_found, 6) if total_found else 1.0,
        "true_matches": total_truth,
    }


def hashhub_extras(ids: np.ndarray, codes: np.ndarray, workdir: Path, rng: np.random.Generator) -> dict:
    """Start-up and update figures: visibility of one new code, a dihedral query's p50 (8 variants),
    save, and reload (mmap) to first answer."""
    ix = PdqIndex()
    ix.add(ids, codes)
    new = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    add_s, _ = timed(lambda: ix.add([int(ids.max()) + 1], new))
    visible = int(ids.max()) + 1 in ix.search_one(new[0], 0)[0].tolist()
    remove_s, _ = timed(lambda: ix.remove([int(ids[0])]))
    turned = [timed(lambda q=q: ix.search_one(q, RADIUS, dihedral=True))[0] for q in codes[2:202]]
    path = workdir / "pdq.hhx"
    save_s, _ = timed(lambda: ix.save(path))
    ix = None  # released before the reload below
    gc.collect()
    load_s, loaded = timed(lambda: PdqIndex.load(path))
    first_s, _ = timed(lambda: loaded.search_one(codes[1], RADIUS))
    size_mb = path.stat().st_size / 1e6
    loaded = None
    path.unlink()
    return {
        "add_one_visible_ms": round(add_s * 1e3, 2),
        "added_code_found": visible,
        "remove_one_ms": round(remove_s * 1e3, 2),
        "dihedral_p50_ms": round(float(np.percentile(turned, 50)) * 1e3, 3),
        "save_s": round(save_s, 2),
        "file_mb": round(size_mb, 1),
        "load_mmap_s": round(load_s, 3),
        "first_query_after_load_ms": round(first_s * 1e3, 2),
    }


def run_size(n: int, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    ids = rng.choice(np.int64(2**40), size=n, replace=False).astype(np.int64)
    out: dict[str, Any] = {
        "benchmark": "index_pdq",
        "size": n,
        "radius": RADIUS,
        "cpus": len(os.sched_getaffinity(0)),
        "faiss": faiss.__version__,
    }
    engines: list[Engine] = [Hashhub(), FaissMultiHash(), FaissFlat()]
    skip = set(args.skip or [])
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("uniform", "clustered"):
            codes = make_data(kind, n, rng)
            queries = make_queries(codes, args.queries, rng)
            per: dict[str, Any] = {}
            for engine in engines:
                if engine.name in skip:
                    continue
                # The exhaustive scan is ~100x slower: fewer queries keep its run short.
                nq = {"faiss_flat": args.flat_queries, "faiss_multihash": args.multihash_queries}.get(
                    engine.name
                )
                nq = nq or args.queries
                singles = min(args.singles, nq)
                per[engine.name] = apart(measure, engine, ids, codes, queries[:nq], singles)
            truth = per["faiss_flat"]["_found"] if "faiss_flat" in per else None
            for res in per.values():
                found = res.pop("_found")
                if truth is not None:
                    res |= score(found, truth)
            if "hashhub" not in skip and not args.no_extras:
                per["hashhub"] |= apart(hashhub_extras, ids, codes, Path(tmp), rng)
            if "faiss_multihash" in per and "hashhub" in per:
                mh, hh = per["faiss_multihash"], per["hashhub"]
                per["speedup_vs_multihash"] = {
                    "p50": round(mh["p50_ms"] / hh["p50_ms"], 1),
                    "batch": round(hh["batch_qps"] / mh["batch_qps"], 1),
                }
            out[kind] = per
            del codes
            gc.collect()
    out["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, action="append", help="index size (repeatable); default 1,000,000"
    )
    parser.add_argument("--queries", type=int, default=2000, help="batch queries per engine")
    parser.add_argument("--flat-queries", type=int, default=200, help="batch queries for the exhaustive scan")
    parser.add_argument(
        "--multihash-queries", type=int, help="batch queries for MultiHash (default --queries)"
    )
    parser.add_argument("--singles", type=int, default=200, help="single queries timed for p50/p99")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-sweep", action="store_true", help="hashhub answers every batch query by query (for comparison)"
    )
    parser.add_argument(
        "--no-extras", action="store_true", help="skip hashhub's update, dihedral and save/load figures"
    )
    parser.add_argument("--skip", action="append", choices=["hashhub", "faiss_flat", "faiss_multihash"])
    args = parser.parse_args(argv)
    if args.no_sweep:
        _pdq_segment.SWEEP_MIN = 1 << 62  # forked engine processes inherit it
    for n in args.size or [1_000_000]:
        print(json.dumps(run_size(n, args)), flush=True)


if __name__ == "__main__":
    main()
