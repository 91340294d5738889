"""Load test on loopback: sustained match requests/s and latency of a real hub and a real agent.

    python benchmarks/ops_load.py [--hashes 3500000] [--seconds 20] [--clients 8]
    python benchmarks/ops_load.py --reuse /tmp/E-3m5 --prepare-only    # sync the agent once, untimed
    python benchmarks/ops_load.py --reuse /tmp/E-3m5 --seconds 15 --clients 8

Builds a SQLite hub holding N random PDQ items, serves it (`hashhub hub serve`), lets a real
`hashhub agent serve` sync all of it, then for `--seconds` each keeps `--clients` concurrent clients
sending one-fingerprint match requests (`POST /api/v1/match` at the hub with a member key,
`POST /api/v1/scan` with JSON fingerprints at the agent); one in ten queries is a listed hash.
The load generator shares the machine with the servers. Prints one JSON line; progress on stderr.

`--reuse DIR` load-tests the hub that `benchmarks/web_pages.py --reuse DIR` built there (its
`build.json` has a member key and a sample of listed PDQs; `--hashes` is then that hub's size) and
keeps the agent's store in DIR/agent.db, so only the first run pays the agent's full sync;
`--prepare-only` does just that sync and stops, so it can run outside the benchmark lock.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import orjson

from hashhub import servers
from hashhub.hub import importer, orgs
from hashhub.hub.core import Hub
from hashhub.hub.settings import HubSettings

HASHHUB = [sys.executable, "-c", "from hashhub.cli import main; main()"]
CHUNK = 100_000
HUB_PORT, AGENT_PORT, AGENT_KEY = 18931, 18932, "bench-agent-key"


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


def progress(message: str) -> None:
    print(f"[ops_load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def serve(args: list[str], health: str, log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start `hashhub ARGS` and wait (generously: a cold 3.5M hub loads for minutes) until healthy."""
    proc = subprocess.Popen([*HASHHUB, *args], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    started = time.monotonic()
    deadline = started + 1800
    said = started
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                progress(f"{args[0]} answers after {time.monotonic() - started:.1f} s")
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() - said > 15:
            said = time.monotonic()
            progress(f"waiting for {args[0]} to start ({said - started:.0f} s)")
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"{args[0:2]} did not start; see {log}")


@dataclass
class Setup:
    """A built hub and where its agent keeps its store."""

    hub_db: str
    agent_db: Path
    member_key: str
    listed: list[str]
    hashes: int
    build_s: float


def reused(folder: Path) -> Setup:
    found = folder / "build.json"
    if not found.exists():
        raise SystemExit(
            f"no build.json in {folder}: build the hub first with "
            f"`benchmarks/web_pages.py --items N --reuse {folder} --build-only`"
        )
    facts = json.loads(found.read_text())
    return Setup(
        facts["db"], folder / "agent.db", facts["analyst_key"], facts["listed_pdq"], facts["items"], 0.0
    )


@contextmanager
def servers_running(
    setup: Setup, tmp: Path, env: dict[str, str], took: dict[str, float]
) -> Iterator[tuple[str, str]]:
    """The hub and an agent following it with the member key; yields their URLs once the agent
    holds every item (progress printed while it syncs). Start-up times go into `took`."""
    hub_url, agent_url = f"http://127.0.0.1:{HUB_PORT}", f"http://127.0.0.1:{AGENT_PORT}"
    procs: list[subprocess.Popen] = []
    try:
        progress(f"starting the hub on {setup.hub_db}")
        started = time.perf_counter()
        procs.append(
            serve(
                ["hub", "serve", "--db", setup.hub_db, "--port", str(HUB_PORT)],
                f"{hub_url}/healthz",
                tmp / "hub.log",
                env,
            )
        )
        took["hub_start_s"] = time.perf_counter() - started
        progress(f"starting the agent on {setup.agent_db}")
        started = time.perf_counter()
        agent_args = [
            "agent",
            "serve",
            "--db",
            str(setup.agent_db),
            "--hub",
            hub_url,
            "--key",
            setup.member_key,
        ]
        agent_args += ["--port", str(AGENT_PORT), "--api-key", AGENT_KEY, "--sync-interval", "3600"]
        procs.append(serve(agent_args, f"{agent_url}/healthz", tmp / "agent.log", env))
        took["agent_start_s"] = time.perf_counter() - started
        started = said = time.perf_counter()
        while (held := httpx.get(f"{agent_url}/healthz", timeout=60).json()["items"]) < setup.hashes:
            if time.perf_counter() - said > 15:
                said = time.perf_counter()
                progress(f"agent holds {held:,} of {setup.hashes:,} items ({said - started:.0f} s)")
            time.sleep(1)
        took["agent_initial_sync_s"] = time.perf_counter() - started
        progress(f"agent holds every item after {took['agent_initial_sync_s']:.1f} s")
        yield hub_url, agent_url
    finally:
        for proc in reversed(procs):
            servers.stop(proc, timeout=60)  # Ctrl-C: let each save its state files, as an operator would


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
    parser.add_argument("--reuse", type=Path, default=None, help="a folder web_pages.py --reuse built")
    parser.add_argument("--prepare-only", action="store_true", help="with --reuse: sync the agent, stop")
    opts = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHHUB_")}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = opts.reuse or Path(tmp_name)
        if opts.reuse:
            setup = reused(opts.reuse)
        else:
            started = time.perf_counter()
            keys, listed = build_hub(tmp / "hub.db", opts.hashes, tmp)
            setup = Setup(
                f"sqlite:///{tmp / 'hub.db'}",
                tmp / "agent.db",
                keys["plat"],
                listed,
                opts.hashes,
                time.perf_counter() - started,
            )
        took: dict[str, float] = {}
        with servers_running(setup, tmp, env, took) as (hub_url, agent_url):
            if opts.prepare_only:
                progress("prepared: the agent's store is complete")
                return
            rng = random.Random(5)
            queries = [
                rng.choice(setup.listed) if i % 10 == 0 else f"{rng.getrandbits(256):064x}"
                for i in range(1000)
            ]
            # A cold hub loads its pool on its first match; time that apart from the load.
            progress("first match at the hub (loads its pool when cold)")
            started = time.perf_counter()
            httpx.post(
                f"{hub_url}/api/v1/match",
                json={"fingerprints": [{"pdq": setup.listed[0]}]},
                headers={"Authorization": f"Bearer {setup.member_key}"},
                timeout=1800,
            ).raise_for_status()
            hub_warm_s = time.perf_counter() - started
            progress(f"hub pool ready after {hub_warm_s:.1f} s; {opts.seconds:g} s of hub load")
            hub_figures = load(
                lambda c, q: c.post("/api/v1/match", json={"fingerprints": [{"pdq": q}]}),
                hub_url,
                {"Authorization": f"Bearer {setup.member_key}"},
                queries,
                opts.seconds,
                opts.clients,
            )
            progress(f"hub: {hub_figures}; {opts.seconds:g} s of agent load")
            agent_figures = load(
                lambda c, q: c.post("/api/v1/scan", json={"fingerprints": {"pdq": q}}),
                agent_url,
                {"Authorization": f"Bearer {AGENT_KEY}"},
                queries,
                opts.seconds,
                opts.clients,
            )
            load_avg = os.getloadavg()
    print(
        json.dumps(
            {
                "benchmark": "ops_load",
                "hashes": setup.hashes,
                "clients": opts.clients,
                "seconds": opts.seconds,
                "reused": str(opts.reuse) if opts.reuse else None,
                "build_s": round(setup.build_s, 1),
                **{name: round(seconds, 1) for name, seconds in took.items()},
                "hub_first_match_s": round(hub_warm_s, 1),
                "hub_match": hub_figures,
                "agent_scan_fingerprints": agent_figures,
                "load_avg": [round(x, 2) for x in load_avg],
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
