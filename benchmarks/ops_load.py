"""Load test on loopback: sustained match requests/s and latency of a real hub and a real agent.

    python benchmarks/ops_load.py [--hashes 3500000] [--seconds 20] [--clients 8]

Builds a SQLite hub holding N random PDQ items, serves it (`hashhub hub serve`), lets a real
`hashhub agent serve` sync all of it, then for `--seconds` each keeps `--clients` concurrent clients
sending one-fingerprint match requests (`POST /api/v1/match` at the hub with a member key,
`POST /api/v1/scan` with JSON fingerprints at the agent); one in ten queries is a listed hash.
The load generator shares the machine with the servers. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import orjson

from hashhub.hub import importer, orgs
from hashhub.hub.core import Hub
from hashhub.hub.settings import HubSettings

HASHHUB = [sys.executable, "-c", "from hashhub.cli import main; main()"]
CHUNK = 100_000


def build_hub(db: Path, count: int, tmp: Path) -> tuple[dict[str, str], list[str]]:
    hub = Hub(HubSettings(db=f"sqlite:///{db}"))
    rng = np.random.default_rng(3)
    listed: list[str] = []
    try:
        keys = {
            "contrib": orgs.create_org(hub.engine, "contrib", ["contributor"])["api_key"],
            "plat": orgs.create_org(hub.engine, "plat", ["member"])["api_key"],
        }
        orgs.create_list(hub.engine, "verified", read=["plat"], write=["contrib"])
        for start in range(0, count, CHUNK):
            n = min(CHUNK, count - start)
            hexes = [bytes(row).hex() for row in rng.integers(0, 256, size=(n, 32), dtype=np.uint8)]
            listed.extend(hexes[:10])
            path = tmp / "chunk.ndjson"
            grade = {"scheme": "industry", "value": "A1"}
            path.write_bytes(
                b"".join(
                    orjson.dumps({"fingerprints": {"pdq": h}, "classification": grade}) + b"\n" for h in hexes
                )
            )
            importer.import_file(hub, path, "contrib", "verified", batch_size=10_000)
    finally:
        hub.close()
    return keys, listed


def serve(args: list[str], health: str, log: Path, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([*HASHHUB, *args], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"{args[0:2]} did not start; see {log}")


def load(
    send: Callable[[httpx.Client, str], httpx.Response],
    base: str,
    headers: dict[str, str],
    queries: list[str],
    seconds: float,
    clients: int,
) -> dict[str, float]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    stop_at = time.monotonic() + seconds

    def worker(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    ok = send(c, rng.choice(queries)).status_code == 200
                except httpx.TransportError:  # a timeout counts as a failure, with its full wait
                    ok = False
                latencies[i].append(time.perf_counter() - started)
                failures[i] += not ok

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ms = np.array([x for lat in latencies for x in lat]) * 1000
    return {
        "requests_per_s": round(len(all_ms) / seconds, 1),
        "p50_ms": round(float(np.percentile(all_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(all_ms, 99)), 2),
        "failed": sum(failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hashes", type=int, default=3_500_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    opts = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHHUB_")}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        keys, listed = build_hub(tmp / "hub.db", opts.hashes, tmp)
        build_s = time.perf_counter() - started
        rng = random.Random(5)
        queries = [rng.choice(listed) if i % 10 == 0 else f"{rng.getrandbits(256):064x}" for i in range(1000)]
        hub_url, agent_url, agent_key = "http://127.0.0.1:18931", "http://127.0.0.1:18932", "bench-agent-key"
        hub = serve(
            ["hub", "serve", "--db", f"sqlite:///{tmp / 'hub.db'}", "--port", "18931"],
            f"{hub_url}/healthz",
            tmp / "hub.log",
            env,
        )
        agent = None
        try:
            agent = serve(
                [
                    "agent",
                    "serve",
                    "--db",
                    str(tmp / "agent.db"),
                    "--hub",
                    hub_url,
                    "--key",
                    keys["plat"],
                    "--port",
                    "18932",
                    "--api-key",
                    agent_key,
                    "--sync-interval",
                    "3600",
                ],
                f"{agent_url}/healthz",
                tmp / "agent.log",
                env,
            )
            started = time.perf_counter()
            while httpx.get(f"{agent_url}/healthz", timeout=30).json()["items"] < opts.hashes:
                time.sleep(1)
            sync_s = time.perf_counter() - started
            # The hub loads its pool on the first request after start; time that apart from the load.
            started = time.perf_counter()
            httpx.post(
                f"{hub_url}/api/v1/match",
                json={"fingerprints": [{"pdq": listed[0]}]},
                headers={"Authorization": f"Bearer {keys['plat']}"},
                timeout=900,
            ).raise_for_status()
            hub_warm_s = time.perf_counter() - started
            hub_figures = load(
                lambda c, q: c.post("/api/v1/match", json={"fingerprints": [{"pdq": q}]}),
                hub_url,
                {"Authorization": f"Bearer {keys['plat']}"},
                queries,
                opts.seconds,
                opts.clients,
            )
            agent_figures = load(
                lambda c, q: c.post("/api/v1/scan", json={"fingerprints": {"pdq": q}}),
                agent_url,
                {"Authorization": f"Bearer {agent_key}"},
                queries,
                opts.seconds,
                opts.clients,
            )
        finally:
            for proc in (agent, hub):
                if proc is not None:
                    proc.kill()
                    proc.wait(timeout=30)
    print(
        json.dumps(
            {
                "benchmark": "ops_load",
                "hashes": opts.hashes,
                "clients": opts.clients,
                "seconds": opts.seconds,
                "build_s": round(build_s, 1),
                "agent_initial_sync_s": round(sync_s, 1),
                "hub_first_match_s": round(hub_warm_s, 1),
                "hub_match": hub_figures,
                "agent_scan_fingerprints": agent_figures,
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
