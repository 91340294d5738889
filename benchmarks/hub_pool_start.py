"""Hub start-up from saved pool files, and the memory of one and two hub processes (issue 12).

    flock /tmp/hashhub-bench.lock .venv/bin/python benchmarks/hub_pool_start.py [--items 1000000]

Writes N random PDQ+MD5 items as NDJSON and loads them with `hashhub hub import` (the real import
path) into a SQLite file. Then, each a real `hashhub hub serve` process timed until its first
`POST /api/v1/match` answers 200:
  1. "cold": no saved pool yet; the process builds its pool from the database, saves the pool files
     beside the database (`<db>.pool/`) and switches to serving from them;
  2. "restart": the same database again, the pool loaded from the files plus the changes after them;
  3. a second process beside the restarted one (two processes on one database, one file directory).
Memory is psutil's RSS and PSS (proportional set size: pages shared by processes, such as the
mapped pool files, split between them) per process after a warm-up of matches; the issue's target
is <= 300 MB for all hub processes together. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from _random_hub import HASHHUB, import_file, new_hub, write_items  # benchmarks/ is on sys.path
from hashhub.hub.core import Hub
from hashhub.hub.pool import Pool
from hashhub.hub.settings import HubSettings
from hashhub.servers import stop

WARM_QUERIES = 200


def memory(pid: int) -> dict[str, float]:
    """RSS and PSS (MB) of a process and its children (summed), and how many processes."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    rss = pss = 0
    for p in procs:
        full = p.memory_full_info()
        rss, pss = rss + full.rss, pss + full.pss
    return {"rss_mb": round(rss / 2**20, 1), "pss_mb": round(pss / 2**20, 1), "processes": len(procs)}


class Server:
    def __init__(self, db: str, port: int, log: Path, env: dict[str, str], key: str, *extra: str) -> None:
        self.port, self.log = port, log
        self.started = time.perf_counter()
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [*HASHHUB, "hub", "serve", "--db", db, "--port", str(port), *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.key = key
        self.client = self.connect()

    def connect(self) -> httpx.Client:
        """A client on a new connection (with several workers, each connection goes to one)."""
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=600,
        )

    def match(self, pdq: str) -> dict[str, Any]:
        r = self.client.post("/api/v1/match", json={"fingerprints": [{"pdq": pdq}]})
        r.raise_for_status()
        return r.json()

    def wait_first_match(self, pdq: str) -> float:
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"hub serve exited {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                self.match(pdq)
                return round(time.perf_counter() - self.started, 2)
            except httpx.TransportError:
                time.sleep(0.05)

    def loaded_in(self) -> float | None:
        """The pool-load time the server logged, when it loaded saved files."""
        found = re.findall(r"pool loaded from .*? in ([0-9.]+) s", self.log.read_text())
        return float(found[-1]) if found else None

    def close(self) -> None:
        self.client.close()
        stop(self.proc)


def prepare(tmp: Path, items: int, env: dict[str, str], out: dict[str, Any]) -> tuple[str, str, list[str]]:
    """The imported database in `tmp` (made once; a later run with the same folder reuses it) with
    no pool files yet; returns its URL, a member's key and some listed PDQs."""
    db = f"sqlite:///{tmp / 'hub.db'}"
    shutil.rmtree(tmp / "hub.db.pool", ignore_errors=True)
    ready = tmp / "prepared.json"
    if ready.exists():
        saved = json.loads(ready.read_text())
        if saved["items"] == items:
            out["items_in_database"] = items + saved.get("later", 0)  # earlier runs' --later items
            return db, saved["member"], saved["listed"]
    for stale in tmp.glob("hub.db*"):
        stale.unlink()
    member = new_hub(db)["plat"]
    listed = write_items(tmp / "items.ndjson", items, prefix="s", samples=50 * (1 + items // 100_000))
    out["import_s"] = round(import_file(tmp / "items.ndjson", db, env), 1)
    ready.write_text(json.dumps({"items": items, "member": member, "listed": listed}))
    return db, member, listed


def _best_ms(pool: Pool, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        pool.stats()
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 2)


def stats_ms(db: str) -> float:
    """`Pool.stats()` (the dashboard's counts) on the pool loaded from the files, best of 5."""
    hub = Hub(HubSettings(db=db))
    try:
        hub.refresh()
        return _best_ms(hub.pool)
    finally:
        hub.close()


def synthetic_stats_ms(items: int) -> float:
    """`Pool.stats()` over `items` made-up live items in 5 lists, 20 contributors, 8 grades, two
    signals and 400 days (columns filled directly: no database), best of 5."""
    rng = np.random.default_rng(3)
    pool = Pool(lambda ids: {})
    pool.cols.ensure(items + 1)
    cols = pool.cols
    cols["status"][1:] = rng.choice([1, 1, 1, 2, 3], items)
    cols["list"][1:] = rng.integers(1, 6, items)
    cols["contributor"][1:] = rng.integers(1, 21, items)
    cols["grade"][1:] = rng.integers(0, 8, items)
    cols["signals"][1:] = rng.integers(1, 4, items)
    cols["day"][1:] = int(time.time() // 86_400) - rng.integers(0, 400, items)
    pool.grades = [{"scheme": "industry", "value": f"G{i}"} for i in range(8)]
    pool.signal_bits = {"md5": 1, "pdq": 2}
    pool.list_names = {i: f"list-{i}" for i in range(1, 6)}
    pool.org_names = {i: f"org-{i}" for i in range(1, 21)}
    return _best_ms(pool)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--port", type=int, default=18961)
    parser.add_argument(
        "--reuse", type=Path, help="keep the imported database in this folder and reuse it next time"
    )
    parser.add_argument("--workers", type=int, default=0, help="also measure `hub serve --workers N`")
    parser.add_argument(
        "--later", type=int, default=20_000, help="items imported after the snapshot, before a last restart"
    )
    opts = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHHUB_")}
    out: dict[str, Any] = {
        "benchmark": "hub_pool_start",
        "items": opts.items,
        "load_before": os.getloadavg()[1],
    }
    with contextlib.ExitStack() as stack:
        if opts.reuse:
            opts.reuse.mkdir(parents=True, exist_ok=True)
            tmp = opts.reuse
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="B-pool-")))
        db, member, listed = prepare(tmp, opts.items, env, out)
        probe = listed[0]

        def warm(server: Server) -> list[Any]:
            return [server.match(p)["results"][0]["matches"] for p in listed[:WARM_QUERIES]]

        cold = Server(db, opts.port, tmp / "cold.log", env, member)
        try:
            out["cold_start_s"] = cold.wait_first_match(probe)  # build from the database + save
            warm(cold)
            out["cold_memory"] = memory(cold.proc.pid)
        finally:
            cold.close()
        snaps = sorted((tmp / "hub.db.pool").glob("snap-*"))
        out["pool_files_mb"] = round(sum(f.stat().st_size for s in snaps for f in s.iterdir()) / 2**20, 1)

        first = Server(db, opts.port + 1, tmp / "first.log", env, member)
        second = None
        try:
            out["restart_s"] = first.wait_first_match(probe)
            out["restart_pool_load_s"] = first.loaded_in()
            answers = warm(first)
            out["one_process"] = memory(first.proc.pid)
            second = Server(db, opts.port + 2, tmp / "second.log", env, member)
            out["second_start_s"] = second.wait_first_match(probe)
            out["second_pool_load_s"] = second.loaded_in()
            out["answers_identical"] = warm(second) == answers
            out["near_found"] = sum(bool(a) for a in answers)
            each = [memory(first.proc.pid), memory(second.proc.pid)]
            out["two_processes"] = {
                "each": each,
                "rss_mb": round(sum(m["rss_mb"] for m in each), 1),
                "pss_mb": round(sum(m["pss_mb"] for m in each), 1),
            }
        finally:
            first.close()
            if second is not None:
                second.close()
        if opts.later:  # changes after the snapshot: a restart maps the files and replays these
            later = write_items(
                tmp / "later.ndjson",
                opts.later,
                seed=11,
                prefix=f"later{time.time_ns()}",
                samples=50 * (1 + opts.later // 100_000),
            )
            import_file(tmp / "later.ndjson", db, env)
            ready = json.loads((tmp / "prepared.json").read_text())
            ready["later"] = ready.get("later", 0) + opts.later
            (tmp / "prepared.json").write_text(json.dumps(ready))
            again = Server(db, opts.port + 4, tmp / "again.log", env, member)
            try:
                out[f"restart_after_{opts.later}_changes_s"] = again.wait_first_match(later[0])
                out[f"restart_after_{opts.later}_changes_pool_load_s"] = again.loaded_in()
                out["later_items_found"] = all(again.match(p)["results"][0]["matches"] for p in later[:50])
            finally:
                again.close()
        if opts.workers:  # one `hub serve --workers N`: a supervisor and N workers on the files
            many = Server(db, opts.port + 3, tmp / "workers.log", env, member, "--workers", str(opts.workers))
            try:
                out["workers_start_s"] = many.wait_first_match(probe)
                for _ in range(4 * opts.workers):  # new connections, so that every worker answers
                    many.client.close()
                    many.client = many.connect()
                    warm(many)
                out[f"workers_{opts.workers}"] = memory(many.proc.pid)
            finally:
                many.close()
        out["stats_ms"] = stats_ms(db)
    out["stats_ms_3_5m_synthetic"] = synthetic_stats_ms(3_500_000)
    out["load_after"] = os.getloadavg()[1]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
