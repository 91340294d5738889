"""Agent benchmark: start-up, backlog scan throughput and scan-API latency with 1M hashes loaded.

    python benchmarks/agent_scan.py [--hashes 1000000] [--files 1000] [--requests 800] [--clients 8]
                                    [--store PATH] [--startup-only]

Builds a temporary agent store holding N items (1,000 are corpus photos a run pretends are listed,
the rest random PDQ hashes; `--store PATH` keeps it at PATH and reuses it when it exists), then
measures:
  - start-up of a real `hashhub agent serve` process, from spawn until it answers a scan that
    matches: first with no saved files (the index rebuilt from the store, which then saves files),
    then again from those files; with each, the resident memory of the process once it answers;
  - `hashhub agent scan`'s engine (all cores) over `--files` corpus JPEGs: files/s;
  - `POST /api/v1/scan` on a real `hashhub agent serve` process: p50 with one client, then p50/p99
    with `--clients` concurrent clients each uploading corpus JPEGs.
Prints one JSON line. Uses only the benign corpus (../shared/corpus/photos).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from hashhub.agent.backlog import scan_local
from hashhub.agent.db import open_engine
from hashhub.agent.items import HubItem
from hashhub.agent.runtime import AgentRuntime, default_state_dir
from hashhub.agent.settings import make_settings
from hashhub.agent.store import Change, Store

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
HASHHUB = [sys.executable, "-c", "from hashhub.cli import main; main()"]


def _rows() -> list[dict[str, str]]:
    with open(CORPUS / "photos.reference.csv", newline="") as handle:
        return [r for r in csv.DictReader(handle) if r["pdq"]]


def build_store(db: str, total: int, listed: list[dict[str, str]]) -> tuple[Store, float]:
    store = Store(open_engine(db))
    hub = store.follow("http://bench-hub.invalid", "unused")
    random_pdq = np.random.default_rng(7).integers(0, 256, (total, 32), dtype=np.uint8)
    started = time.perf_counter()
    batch: list[Change] = []
    classification = {"scheme": "industry", "value": "A1"}
    for n in range(total):
        if n < len(listed):
            fps = {"pdq": listed[n]["pdq"], "md5": listed[n]["md5"]}
        else:
            fps = {"pdq": random_pdq[n].tobytes().hex()}
        item = HubItem(
            str(n + 1), "verified", "bench", ("bench",), None, "image", classification, 2, {}, "active", fps
        )
        batch.append(Change(item.item_id, item))
        if len(batch) == 20_000:
            store.apply_batch(hub.id, batch)
            batch = []
    if batch:
        store.apply_batch(hub.id, batch)
    store.apply_batch(hub.id, [], 1, bootstrapped=True)
    return store, time.perf_counter() - started


def _start_agent(db: str, key: str, log: Any) -> tuple[subprocess.Popen, str]:
    port = 18000 + secrets.randbelow(2000)
    args = ["agent", "serve", "--db", db, "--port", str(port), "--api-key", key, "--sync-interval", "0"]
    return subprocess.Popen(
        [*HASHHUB, *args], stdout=log, stderr=subprocess.STDOUT
    ), f"http://127.0.0.1:{port}"


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def startup(db: str, listed: dict[str, str]) -> dict[str, Any]:
    """Seconds from spawning `agent serve` to a matching scan answer, and its resident memory."""
    key = "bench-" + secrets.token_hex(8)
    with tempfile.NamedTemporaryFile(prefix="agent-bench-", suffix=".log") as log:
        started = time.perf_counter()
        proc, url = _start_agent(db, key, log)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
                while True:
                    try:
                        answer = http.post("/api/v1/scan", json={"fingerprints": listed})
                        if answer.status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if proc.poll() is not None or time.perf_counter() - started > 900:
                        raise RuntimeError(f"agent serve did not start: {Path(log.name).read_text()[-2000:]}")
                    time.sleep(0.05)
                seconds = time.perf_counter() - started
                assert answer.json()["matched"], answer.text
                report = http.get("/api/v1/status").json()["start_up"]
            rss = psutil.Process(proc.pid).memory_info().rss
        finally:
            _stop(proc)
    return {
        "source": report["source"],
        "first_scan_s": round(seconds, 2),
        "index_load_s": report["seconds"],
        "rss_mb": round(rss / 2**20),
    }


def scan_throughput(db: str, files: list[Path]) -> tuple[float, float, int]:
    runtime = AgentRuntime(make_settings(db=db, sync_interval=0))  # what `hashhub agent scan` builds
    try:
        started = time.perf_counter()
        runtime.load()
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        matched = sum(r.matched for r in scan_local(runtime.scanner, files, source="bench"))
        return len(files) / (time.perf_counter() - started), load_s, matched
    finally:
        runtime.close()


def api_latency(db: str, files: list[Path], requests: int, clients: int) -> dict[str, float]:
    key = "bench-" + secrets.token_hex(8)
    log = tempfile.NamedTemporaryFile(prefix="agent-bench-", suffix=".log", delete=False)  # noqa: SIM115
    proc, url = _start_agent(db, key, log)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"agent serve did not start; see {log.name}")
            time.sleep(0.5)
        payloads = [(f.name, f.read_bytes()) for f in files[:200]]
        latencies: list[float] = []
        lock = threading.Lock()
        per_client = requests // clients

        def client(offset: int) -> None:
            with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
                for i in range(per_client):
                    name, data = payloads[(offset * per_client + i) % len(payloads)]
                    started = time.perf_counter()
                    answer = http.post(f"{url}/api/v1/scan", files={"file": (name, data, "image/jpeg")})
                    elapsed = time.perf_counter() - started
                    answer.raise_for_status()
                    with lock:
                        latencies.append(elapsed)

        single: list[float] = []  # one client: the latency of a request that does not queue
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            for warm in payloads[:20]:  # first requests pay for imports and JIT compilation
                http.post(f"{url}/api/v1/scan", files={"file": warm})
            for name, data in payloads[:100]:
                started = time.perf_counter()
                http.post(f"{url}/api/v1/scan", files={"file": (name, data, "image/jpeg")})
                single.append(time.perf_counter() - started)
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        ms = np.array(latencies) * 1000
        return {
            "api_single_client_p50_ms": round(float(np.percentile(np.array(single) * 1000, 50)), 2),
            "api_p50_ms": round(float(np.percentile(ms, 50)), 2),
            "api_p99_ms": round(float(np.percentile(ms, 99)), 2),
            "api_requests": len(latencies),
            "api_clients": clients,
            "api_requests_per_s": round(len(latencies) / wall, 1),
        }
    finally:
        _stop(proc)
        os.unlink(log.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--store", type=Path, help="keep the store here (reused when it exists)")
    parser.add_argument("--startup-only", action="store_true", help="measure start-up only")
    args = parser.parse_args()
    rows = _rows()
    listed = rows[::2][:1000]
    files = [CORPUS / "photos" / r["file"] for r in rows[: args.files]]
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        path = args.store or Path(tmp) / "agent.db"
        db = f"sqlite:///{path}"
        store_s = None
        if not path.exists():
            store, store_s = build_store(db, args.hashes, listed)
            store.engine.dispose()
        engine = open_engine(db)
        state = default_state_dir(Store(engine))
        engine.dispose()
        if state is not None:  # start without saved files: the first start-up rebuilds from the store
            shutil.rmtree(state, ignore_errors=True)
        one = {"pdq": listed[0]["pdq"], "md5": listed[0]["md5"]}
        from_store = startup(db, one)  # no saved files: rebuilt from the store, then saved
        from_files = startup(db, one)
        result: dict[str, Any] = {
            "benchmark": "agent_scan",
            "hashes_loaded": args.hashes,
            "store_build_s": None if store_s is None else round(store_s, 1),
            "startup_from_store": from_store,
            "startup_from_files": from_files,
            "cpus": os.cpu_count(),
        }
        if not args.startup_only:
            files_per_s, load_s, matched = scan_throughput(db, files)
            result |= {
                "index_load_s": round(load_s, 1),
                "scan_files": len(files),
                "scan_matched": matched,
                "scan_files_per_s": round(files_per_s, 1),
                **api_latency(db, files, args.requests, args.clients),
            }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
