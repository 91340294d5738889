"""The hub's match path against HMA's figures (issue 12): a real `hashhub hub serve` holding N items.

    python benchmarks/hub_match.py [--items 1000000] [--seconds 10] [--clients 8]

Writes an NDJSON of N random PDQ+MD5 items, loads it with `hashhub hub import` (timed), starts
`hashhub hub serve` on the SQLite file and times until its first match answers (start-up: the
process loads its pool from the database). Then, over HTTP with httpx: p50/p99 of 1,000 sequential
single-hash match requests (half listed PDQs with 1-20 bits flipped, half random), requests/s with
`--clients` concurrent client threads for `--seconds`, the time from an acknowledged submit to the
first match that finds it, and the resident memory of the server's process tree. The load
generator shares the machine with the server. Prints one JSON line, HMA's published figures under
"peer".
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
from pathlib import Path

import httpx
import numpy as np
import orjson
import psutil

from hashhub.hub import orgs
from hashhub.hub.core import Hub
from hashhub.hub.settings import HubSettings

HASHHUB = [sys.executable, "-c", "from hashhub.cli import main; main()"]
GRADE = {"scheme": "industry", "value": "A1"}
SAMPLES = 1000
FRESH_SUBMITS = 20
#: HMA (same machine kind, 1,000,000 PDQ hashes), as quoted in issue 12.
PEER = {
    "name": "HMA",
    "items": 1_000_000,
    "match_p50_ms": 2.56,
    "requests_per_s_8_clients": 380,
    "rss_mb": 804,
    "rss_mb_while_rebuilding": "1400-2200",
    "rebuild": "full, every 60 s (23 s for 1M)",
    "new_hash_matchable_s": "52-109",
    "add_over_api_per_s": 364,
}


def write_items(path: Path, count: int, rng: np.random.Generator) -> list[str]:
    """N random PDQ+MD5 items as NDJSON; returns a sample of the listed PDQs to query near."""
    sample: list[str] = []
    with path.open("wb") as out:
        for start in range(0, count, 100_000):
            n = min(100_000, count - start)
            pdqs = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
            md5s = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
            lines = []
            for i in range(n):
                pdq = pdqs[i].tobytes().hex()
                row = {"external_id": f"b-{start + i}", "classification": GRADE}
                row["fingerprints"] = {"pdq": pdq, "md5": md5s[i].tobytes().hex()}
                lines.append(orjson.dumps(row))
            out.write(b"\n".join(lines) + b"\n")
            sample.extend(pdqs[j].tobytes().hex() for j in range(0, n, max(1, count // SAMPLES)))
    return sample[:SAMPLES]


def flip(pdq: str, bits: int, rng: random.Random) -> str:
    mask = sum(1 << b for b in rng.sample(range(256), bits))
    return f"{int(pdq, 16) ^ mask:064x}"


def tree_rss_mb(pid: int) -> float:
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    return round(sum(p.memory_info().rss for p in procs) / 2**20, 1)


def match(client: httpx.Client, pdq: str) -> httpx.Response:
    return client.post("/api/v1/match", json={"fingerprints": [{"pdq": pdq}]})


def matched(response: httpx.Response) -> bool:
    return response.status_code == 200 and bool(response.json()["results"][0]["matches"])


def wait_started(client: httpx.Client, proc: subprocess.Popen, pdq: str) -> None:
    """Until the first match answers 200 (the server has loaded its pool)."""
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"hub serve exited {proc.returncode}")
        try:
            if match(client, pdq).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)


def sequential(client: httpx.Client, queries: list[tuple[str, bool]]) -> dict[str, float]:
    ms, near_hits = [], 0
    for pdq, near in queries:
        started = time.perf_counter()
        r = match(client, pdq)
        ms.append((time.perf_counter() - started) * 1000)
        near_hits += near and matched(r)
    return {
        "match_p50_ms": round(float(np.percentile(ms, 50)), 2),
        "match_p99_ms": round(float(np.percentile(ms, 99)), 2),
        "near_duplicates_found": f"{near_hits}/{sum(near for _, near in queries)}",
    }


def concurrent(base: str, headers: dict[str, str], pdqs: list[str], seconds: float, clients: int) -> dict:
    counts, failures = [0] * clients, [0] * clients
    stop_at = time.monotonic() + seconds

    def worker(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            while time.monotonic() < stop_at:
                failures[i] += match(c, rng.choice(pdqs)).status_code != 200
                counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"requests_per_s": round(sum(counts) / seconds, 1), "non_200": sum(failures)}


def submit_to_match(contrib: httpx.Client, member: httpx.Client, rng: random.Random) -> list[float]:
    """Seconds from each acknowledged submit until a match request finds the new hash."""
    out = []
    for i in range(FRESH_SUBMITS):
        pdq = f"{rng.getrandbits(256):064x}"
        row = {"external_id": f"fresh-{i}", "classification": GRADE, "fingerprints": {"pdq": pdq}}
        r = contrib.post("/api/v1/items", json={"list": "verified", "items": [row]})
        assert r.status_code == 200, r.text
        acked = time.perf_counter()
        while not matched(match(member, pdq)):
            if time.perf_counter() - acked > 300:
                raise SystemExit("a submitted hash was not matchable after 300 s")
        out.append(time.perf_counter() - acked)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--port", type=int, default=18951)
    opts = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHHUB_")}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db = f"sqlite:///{tmp / 'hub.db'}"
        hub = Hub(HubSettings(db=db))
        try:
            keys = {
                "contrib": orgs.create_org(hub.engine, "contrib", ["contributor"])["api_key"],
                "plat": orgs.create_org(hub.engine, "plat", ["member"])["api_key"],
            }
            orgs.create_list(hub.engine, "verified", read=["plat"], write=["contrib"])
        finally:
            hub.close()
        listed = write_items(tmp / "items.ndjson", opts.items, np.random.default_rng(7))

        started = time.perf_counter()
        imported = subprocess.run(
            [*HASHHUB, "hub", "import", str(tmp / "items.ndjson"), "--org", "contrib", "--list", "verified"],
            env={**env, "HASHHUB_DB": db},
            capture_output=True,
            text=True,
        )
        import_s = time.perf_counter() - started
        if imported.returncode != 0:
            raise SystemExit(f"import failed: {imported.stderr[-2000:]}")

        base = f"http://127.0.0.1:{opts.port}"
        log = (tmp / "hub.log").open("w")
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*HASHHUB, "hub", "serve", "--db", db, "--port", str(opts.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        member_headers = {"Authorization": f"Bearer {keys['plat']}"}
        contrib_headers = {"Authorization": f"Bearer {keys['contrib']}"}
        try:
            with (
                httpx.Client(base_url=base, headers=member_headers, timeout=600) as member,
                httpx.Client(base_url=base, headers=contrib_headers, timeout=60) as contrib,
            ):
                wait_started(member, proc, listed[0])
                startup_s = time.perf_counter() - started
                rss_idle = tree_rss_mb(proc.pid)
                rng = random.Random(11)
                queries = [
                    (flip(listed[i], rng.randint(1, 20), rng), True)
                    if i % 2 == 0
                    else (f"{rng.getrandbits(256):064x}", False)
                    for i in range(SAMPLES)
                ]
                seq = sequential(member, queries)
                conc = concurrent(base, member_headers, [q for q, _ in queries], opts.seconds, opts.clients)
                fresh = submit_to_match(contrib, member, rng)
                rss_after = tree_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
    report = {
        "benchmark": "hub_match",
        "items": opts.items,
        "import_s": round(import_s, 1),
        "import_items_per_s": round(opts.items / import_s),
        "startup_s": round(startup_s, 2),
        **seq,
        "clients": opts.clients,
        **conc,
        "submit_to_match_s_median": round(float(np.median(fresh)), 3),
        "submit_to_match_s_max": round(max(fresh), 3),
        "rss_mb_idle": rss_idle,
        "rss_mb_after_load": rss_after,
        "cpu_cores": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),  # other work sharing the machine
        "peer": PEER,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
