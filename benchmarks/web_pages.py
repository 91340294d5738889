"""Web UI page times on a large hub, first visit and warm. Prints ONE JSON line.

    .venv/bin/python benchmarks/web_pages.py                       # 1,000,000 items, SQLite, temp dir
    .venv/bin/python benchmarks/web_pages.py --items 3500000 --reuse /tmp/E-3m5   # build once, reuse
    .venv/bin/python benchmarks/web_pages.py --items 100000 --db postgresql+psycopg://...

Items are made-up fingerprints ingested through the hub's own service (benchmarks/hub_sync.py's
batches); the analyst organisation (member + contributor) also has 200 items of its own, disputed.
`--reuse DIR` keeps the hub in DIR: `build.json`, written last, records the keys and a sample of
listed PDQs, so a later run with the same DIR and --items skips the build (`--build-only` stops
after it) and `benchmarks/ops_load.py --reuse DIR` load-tests the same hub.

A real `hashhub hub serve` process serves the hub; signed-in sessions (cookie) fetch each page over
HTTP. Per page, in milliseconds: the first visit after the server started, then p50 and p95 of
`--rounds` warm visits. The first dashboard visit also waits for the hub to load its match pool
(saved pool files or the database), which is reported apart as `pool_ready_s`. Pages: the dashboard
of a visitor who reads every list and of a contributor who reads none (its 3.5M own items), search by
PDQ, an item page, changes (newest, a deep page, and for an organisation without items, which walks
the whole bounded window), both dispute queues, audit log and admin.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.hub_sync import batches
from tests.agent.procs import HASHHUB, env, free_port

from hashhub import db as hashhub_db
from hashhub import servers
from hashhub.hub import feedback, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.errors import HubError
from hashhub.hub.settings import HubSettings


def sign_in(url: str, key: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=900)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    answer = client.post("/login", data={"key": key, "csrf": token})
    if answer.status_code != 303:
        raise SystemExit(f"sign-in failed: {answer.status_code}")
    return client


def timed(client: httpx.Client, path: str) -> float:
    t = time.perf_counter()
    answer = client.get(path)
    elapsed = (time.perf_counter() - t) * 1000
    if answer.status_code != 200:
        raise SystemExit(f"GET {path} answered {answer.status_code}: {answer.text[:300]}")
    return elapsed


def visits(client: httpx.Client, path: str, rounds: int) -> dict[str, float]:
    """The first visit, then p50/p95 of `rounds` more (ms)."""
    first = timed(client, path)
    warm = np.array([timed(client, path) for _ in range(rounds)])
    return {
        "first_ms": round(first, 1),
        "p50_ms": round(float(np.percentile(warm, 50)), 1),
        "p95_ms": round(float(np.percentile(warm, 95)), 1),
    }


BUILD_FILE = "build.json"
SAMPLE_PER_BATCH = 3  # listed PDQs kept per ingested batch, for load tests that reuse the hub


def build(directory: Path, total: int, db: str | None = None) -> dict[str, Any]:
    """Create a hub of `total` made-up items plus the analyst's 200 disputed ones (in `directory`
    on SQLite unless `db` names another database).

    Writes `build.json` (keys of the benchmark's organisations, a sample of listed PDQs) last, so a
    directory with that file holds a complete hub and `--reuse` can trust it."""
    directory.mkdir(parents=True, exist_ok=True)
    db = db or f"sqlite:///{directory / 'hub.db'}"
    hub = Hub(HubSettings(db=db, dispute_threshold=1))
    try:
        admin = orgs.create_org(hub.engine, "bench-admin", ["admin"])["api_key"]
        orgs.create_org(hub.engine, "bench-contributor", ["contributor"])
        analyst = orgs.create_org(hub.engine, "bench-analyst", ["member", "contributor"])["api_key"]
        orgs.create_list(
            hub.engine, "bench", read=["bench-analyst"], write=["bench-contributor", "bench-analyst"]
        )
        t = time.perf_counter()
        contributor = orgs.acting_as(hub.engine, "bench-contributor")
        listed: list[str] = []
        for n, rows in enumerate(batches(total)):
            listed += [row["fingerprints"]["pdq"] for row in rows[:SAMPLE_PER_BATCH]]
            ingest.submit(hub, contributor, "bench", rows)
            if n % 20 == 0:
                print(f"built {n * len(rows):,} items in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        # The analyst contributes 200 items of its own and members disputed them (its dispute queue).
        own = next(batches(200, seed=99))
        for row in own:
            row["external_id"] = f"own-{row['external_id']}"
        ids = [
            int(i["id"])
            for i in ingest.submit(hub, orgs.acting_as(hub.engine, "bench-analyst"), "bench", own)["items"]
        ]
        member = orgs.acting_as(hub.engine, "bench-analyst")
        for item_id in ids:
            feedback.give_feedback(hub, member, item_id, "negative", "wrong_grade")
        facts = {
            "db": db,
            "items": total + 200,
            "admin_key": admin,
            "analyst_key": analyst,
            "listed_pdq": listed,
            "build_s": round(time.perf_counter() - t, 1),
        }
    finally:
        hub.close()
    (directory / BUILD_FILE).write_bytes(orjson.dumps(facts))
    return facts


def built(directory: Path, total: int, db: str | None = None) -> dict[str, Any]:
    """The hub in `directory` if a complete build of the same size is there, else a new build."""
    found = directory / BUILD_FILE
    if found.exists():
        facts = orjson.loads(found.read_bytes())
        if facts["items"] == total + 200:
            return facts
        raise SystemExit(f"{directory} holds a {facts['items']:,}-item hub, not {total + 200:,}")
    if (directory / "hub.db").exists():
        raise SystemExit(f"{directory} holds an unfinished build (no {BUILD_FILE}); delete it first")
    return build(directory, total, db)


def fresh_key(db: str, org: str, role: str) -> str:
    """A new key of `org` (created with `role` if missing); build.json keeps only two keys. Only
    the engine is opened: a `Hub` would load its whole pool for nothing."""
    engine = hashhub_db.create_engine(db)
    try:
        try:
            return orgs.create_org(engine, org, [role])["api_key"]
        except HubError:  # it exists: issue another key
            return orgs.create_key(engine, org)["api_key"]
    finally:
        engine.dispose()


def measure_pages(facts: dict[str, Any], rounds: int, log: Path) -> dict[str, Any]:
    db, items = facts["db"], facts["items"]
    contributor = fresh_key(db, "bench-contributor", "contributor")
    sparse = fresh_key(db, "bench-sparse", "contributor")  # no items: /changes walks its whole window
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [*HASHHUB, "hub", "serve", "--db", db, "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env(HASHHUB_DISPUTE_THRESHOLD="1")
        )
    try:
        started = time.perf_counter()
        servers.wait_healthy(f"{url}/healthz", proc, timeout=900)
        up_s = time.perf_counter() - started
        analyst = sign_in(url, facts["analyst_key"])
        admin, owner, nobody = (
            sign_in(url, facts["admin_key"]),
            sign_in(url, contributor),
            sign_in(url, sparse),
        )
        print(f"server up in {up_s:.1f} s; first dashboard visit (loads the pool)", file=sys.stderr)
        started = time.perf_counter()
        timed(analyst, "/")
        pool_ready_s = time.perf_counter() - started
        pdq = facts["listed_pdq"][len(facts["listed_pdq"]) // 2]
        pages = {
            "dashboard_reads_all": (analyst, "/"),
            "dashboard_contributor": (owner, "/"),
            "search_pdq": (analyst, f"/search?signal=pdq&q={pdq}"),
            "item": (analyst, f"/items/{items // 2}"),
            "changes": (analyst, "/changes"),
            "changes_deep": (analyst, f"/changes?before={items // 3}"),
            "changes_no_items": (nobody, "/changes"),
            "disputes_200": (analyst, "/disputes"),
            "disputes_none": (owner, "/disputes"),
            "audit": (admin, "/audit"),
            "admin": (admin, "/admin"),
        }
        figures = {}
        for name, (client, path) in pages.items():
            figures[name] = visits(client, path, rounds)
            print(f"{name}: {figures[name]}", file=sys.stderr)
        for client in (analyst, admin, owner, nobody):
            client.close()
    finally:
        servers.stop(proc)
    return {"server_start_s": round(up_s, 1), "pool_ready_s": round(pool_ready_s, 1), "pages": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="hub database URL (default: SQLite in the build folder)")
    parser.add_argument(
        "--reuse", type=Path, default=None, help="keep the built hub in this folder; reuse it when there"
    )
    parser.add_argument("--build-only", action="store_true", help="build (or check) the hub, then stop")
    parser.add_argument("--rounds", type=int, default=20, help="warm visits per page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="web-pages-") as tmp:
        folder = args.reuse or Path(tmp)
        facts = built(folder, args.items, args.db)
        out: dict[str, Any] = {"benchmark": "web_pages", "items": facts["items"], "build_s": facts["build_s"]}
        if not args.build_only:
            out |= measure_pages(facts, args.rounds, folder / "hub-serve.log")
    load = os.getloadavg()
    out |= {"load_avg": [round(x, 2) for x in load], "cpus": os.cpu_count()}
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
