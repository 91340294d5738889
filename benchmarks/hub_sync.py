"""Hub sync benchmark: ingest rate, snapshot download time, submit-to-feed latency. Prints ONE JSON line.

    .venv/bin/python benchmarks/hub_sync.py                 # 1,000,000 items on SQLite (a temp file)
    .venv/bin/python benchmarks/hub_sync.py --items 100000 --db postgresql+psycopg://...

Items are made-up PDQ + MD5 fingerprints (random bytes). `ingest_items_per_s` is the service call
`POST /api/v1/items` runs (`ingest.submit`: validation, dedup, bulk insert, feed cursor, audit), in
batches of 10,000, one after another in this thread, one transaction each, as POST commits them.
The snapshot is downloaded over HTTP from a real uvicorn server with gzip, then decompressed and
counted. Submit-to-feed: a member polls the feed every 20 ms while
a contributor POSTs one item over HTTP; the time from the POST to the item appearing, median of 20.
Also reported: how long the in-memory match pool takes to catch up with everything ingested
(index build and clustering), which ingest itself does not wait for.
Import (issue 12): the same number of items written to an NDJSON file, one item a line in the
`POST /api/v1/items` item shape, then loaded by `hashhub hub import FILE` run as its own process
(start-up, schema check and all) into a fresh database: a new SQLite file, or with --db a new
contributor and list in that database. `import_items_per_s` is items over that process's wall time
(it parses in a second process and commits batches in groups, see `hashhub.hub.grouped`);
`import_cpu_us_per_item` is the CPU time (user + system) of the import and its parse process
together, per item: a figure the machine's load moves less than the wall time.
The import's parse side alone, on the same file: `parse_only_rows_per_s` is what the import's
pipeline delivers with nothing writing (read, parse and hand over in `parse_processes` processes,
rows rebuilt on this side), `parse_one_thread_rows_per_s` the same work in this process's thread
(no hand-over): the most a writer could be fed, and the parse CPU a row (1e6 / it, in us).
HTTP (`http_2_uploaders_items_per_s`): two contributors POST their halves in batches of 10,000,
concurrently, to a real `hashhub hub serve --workers 2` on a fresh database (bodies encoded ahead).
Targets on SQLite on a 2-core machine: ingest >= 50,000 items/s, snapshot <= 10 s, feed <= 1 s,
import >= 50,000 items/s.

    flock /tmp/hashhub-bench.lock .venv/bin/python benchmarks/hub_sync.py --import-only   # import + parse
    flock /tmp/hashhub-bench.lock .venv/bin/python benchmarks/hub_sync.py --http-only     # HTTP uploads
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hub.conftest import serving

from hashhub.hub import importer, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.settings import HubSettings

BATCH = 10_000


def batches(total: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    for start in range(0, total, BATCH):
        n = min(BATCH, total - start)
        pdqs = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
        md5s = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
        yield [
            {
                "external_id": f"bench-{start + i}",
                "content_type": "image",
                "classification": {"scheme": "industry", "value": "A1"},
                "verification": {"reviewers": 1},
                "fingerprints": {"pdq": pdqs[i].tobytes().hex(), "md5": md5s[i].tobytes().hex()},
            }
            for i in range(n)
        ]


def measure_ingest(hub: Hub, total: int) -> float:
    contributor = orgs.acting_as(hub.engine, "bench-contributor")
    spent = 0.0
    for rows in batches(total):
        t = time.perf_counter()
        ingest.submit(hub, contributor, "bench", rows)
        spent += time.perf_counter() - t
    return total / spent


def measure_snapshot(url: str, key: str, expected: int) -> tuple[float, int]:
    t = time.perf_counter()
    headers = {"Authorization": f"Bearer {key}", "Accept-Encoding": "gzip"}
    unpack = zlib.decompressobj(31)
    lines = 0
    size = 0
    with httpx.stream("GET", f"{url}/api/v1/snapshot", headers=headers, timeout=600) as r:
        r.raise_for_status()
        for chunk in r.iter_raw(1 << 20):
            size += len(chunk)
            lines += unpack.decompress(chunk).count(b"\n")
    lines += unpack.flush().count(b"\n")
    elapsed = time.perf_counter() - t
    if lines != expected + 1:
        raise SystemExit(f"snapshot had {lines - 1} items, expected {expected}")
    return elapsed, size


def measure_feed_latency(url: str, member_key: str, contributor_key: str, rounds: int = 20) -> list[float]:
    member = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {member_key}"}, timeout=60)
    contributor = httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {contributor_key}"}, timeout=60
    )
    after = orjson.loads(member.get("/api/v1/feed", params={"after": 0, "limit": 1}).content)["next"]
    head = orjson.loads(member.get("/api/v1/stats").content)["cursor"]
    after = max(after, head)
    latencies = []
    for n in range(rounds):
        seen = threading.Event()
        start_after = after

        def poll(
            start: int = start_after, done: threading.Event = seen, wanted: str = f"latency-{n}"
        ) -> None:
            cursor = start
            while not done.is_set():
                page = orjson.loads(member.get("/api/v1/feed", params={"after": cursor}).content)
                if any(c["op"] == "upsert" and c["item"]["external_id"] == wanted for c in page["changes"]):
                    done.set()
                    return
                cursor = page["next"]
                time.sleep(0.02)

        poller = threading.Thread(target=poll)
        poller.start()
        row = next(batches(1, seed=1000 + n))[0]
        row["external_id"] = f"latency-{n}"
        t = time.perf_counter()
        r = contributor.post("/api/v1/items", json={"list": "bench", "items": [row]})
        r.raise_for_status()
        seen.wait(30)
        latencies.append(time.perf_counter() - t)
        poller.join()
        after = r.json()["cursor"]
    return latencies


def write_ndjson(path: Path, total: int) -> None:
    with path.open("wb") as out:
        for rows in batches(total, seed=11):
            out.write(b"".join(orjson.dumps(row) + b"\n" for row in rows))


def measure_parse(hub: Hub, source: Path, total: int, *, in_process: bool) -> float:
    """Rows/s of the import's parse side alone over `source`: every row read, parsed and (from
    a parse process) handed over, nothing written."""
    t = time.perf_counter()
    rows = sum(len(b.good) for b in importer.parse_file(hub, source, BATCH, in_process=in_process))
    elapsed = time.perf_counter() - t
    if rows != total:
        raise SystemExit(f"the parser accepted {rows} rows, expected {total}")
    return total / elapsed


def measure_import(tmp: Path, total: int, db_url: str | None) -> dict[str, float]:
    """Items/s of `hashhub hub import` of an NDJSON file of `total` items, as its own process,
    then the parse side alone on the same file."""
    source = tmp / "import.ndjson"
    write_ndjson(source, total)
    url = db_url or f"sqlite:///{tmp / 'import.db'}"
    hub = Hub(HubSettings(db=url))
    orgs.create_org(hub.engine, "bench-importer", ["contributor"])
    orgs.create_list(hub.engine, "bench-import", write=["bench-importer"])
    command = [sys.executable, "-c", "from hashhub.cli import main; main()", "hub", "import", str(source)]
    command += ["--org", "bench-importer", "--list", "bench-import", "--db", url]
    cpu = _children_cpu()
    t = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t
    cpu = _children_cpu() - cpu  # the import and, waited for by it, its parse process
    if done.returncode != 0:
        raise SystemExit(f"hashhub hub import failed ({done.returncode}): {done.stderr[-2000:]}")
    report = orjson.loads(done.stdout)
    if report.get("created") != total:
        raise SystemExit(f"hashhub hub import created {report.get('created')} items, expected {total}")
    figures = {
        "import_items_per_s": total / elapsed,
        "import_cpu_us_per_item": cpu / total * 1e6,
        "parse_only_rows_per_s": measure_parse(hub, source, total, in_process=True),
        "parse_one_thread_rows_per_s": measure_parse(hub, source, total, in_process=False),
    }
    hub.close()
    source.unlink()
    return figures


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def measure_http_ingest(tmp: Path, total: int, db_url: str | None, uploaders: int = 2) -> float:
    """Items/s that `uploaders` contributors, each POSTing its share in batches of 10,000 one
    request after another, get from a real `hashhub hub serve --workers 2` on a fresh database.

    Request bodies are encoded before the clock starts (real uploaders encode on their own
    machines); the server's JSON decoding, validation and writing are all timed."""
    url = db_url or f"sqlite:///{tmp / 'http.db'}"
    hub = Hub(HubSettings(db=url))
    names = [f"bench-uploader-{n}" for n in range(uploaders)]
    keys = [orgs.create_org(hub.engine, name, ["contributor"])["api_key"] for name in names]
    orgs.create_list(hub.engine, "bench-http", write=names)
    hub.close()
    bodies: list[list[bytes]] = [[] for _ in range(uploaders)]
    for n, rows in enumerate(batches(total, seed=13)):
        bodies[n % uploaders].append(orjson.dumps({"list": "bench-http", "items": rows}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The contributor rate limit (requests per second and key) is far above 10 a second: it never
    # refuses these; raise it anyway so a changed default cannot turn the figure into a 429 count.
    env = {**os.environ, "HASHHUB_RATE_LIMITS": orjson.dumps({"contributor": 1e9}).decode()}
    command = [sys.executable, "-c", "from hashhub.cli import main; main()", "hub", "serve"]
    command += ["--db", url, "--port", str(port), "--workers", "2", "--log-level", "warning"]
    log = (tmp / "http-serve.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"hashhub hub serve did not start: {(tmp / 'http-serve.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        failures: list[str] = []

        def upload(key: str, mine: list[bytes]) -> None:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
                for body in mine:
                    r = client.post("/api/v1/items", content=body)
                    if r.status_code != 200:
                        failures.append(f"{r.status_code}: {r.text[:300]}")
                        return

        threads = [threading.Thread(target=upload, args=(k, b)) for k, b in zip(keys, bodies, strict=True)]
        t = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - t
        if failures:
            raise SystemExit(f"an upload failed: {failures[0]}")
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--import-only", action="store_true", help="only the import and parse figures")
    parser.add_argument("--http-only", action="store_true", help="only the HTTP uploaders' figure")
    args = parser.parse_args()
    load_before = os.getloadavg()[1]  # the machine is shared: figures only mean something with this
    if args.import_only or args.http_only:
        with tempfile.TemporaryDirectory() as tmp:
            if args.import_only:
                line = _import_line(args.items, measure_import(Path(tmp), args.items, args.db), load_before)
            else:
                line = {"benchmark": "hub_sync", "part": "http", "items": args.items}
                line["http_2_uploaders_items_per_s"] = round(
                    measure_http_ingest(Path(tmp), args.items, args.db)
                )
                line["load_average_5min"] = [round(load_before, 1), round(os.getloadavg()[1], 1)]
        print(orjson.dumps(line).decode())
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        hub = Hub(HubSettings(db=url))
        contributor = orgs.create_org(hub.engine, "bench-contributor", ["contributor"])
        member = orgs.create_org(hub.engine, "bench-member", ["member"])
        orgs.create_list(hub.engine, "bench", read=["bench-member"], write=["bench-contributor"])
        rate = measure_ingest(hub, args.items)
        t = time.perf_counter()
        hub.refresh()  # the in-memory match pool follows the change log: load everything just written
        pool_s = time.perf_counter() - t
        with serving(hub) as base:
            snapshot_s, snapshot_bytes = measure_snapshot(base, member["api_key"], args.items)
            latencies = measure_feed_latency(base, member["api_key"], contributor["api_key"])
        hub.close()
        figures = measure_import(Path(tmp), args.items, args.db)
        http_rate = measure_http_ingest(Path(tmp), args.items, args.db)
    print(
        orjson.dumps(
            {
                "benchmark": "hub_sync",
                "backend": url.split(":", 1)[0],
                "items": args.items,
                "ingest_items_per_s": round(rate),
                "ingest_path": "POST /api/v1/items's service call, batches of 10,000, a transaction each",
                "http_2_uploaders_items_per_s": round(http_rate),
                "import_items_per_s": round(figures["import_items_per_s"]),
                "import_cpu_us_per_item": round(figures["import_cpu_us_per_item"], 1),
                "parse_only_rows_per_s": round(figures["parse_only_rows_per_s"]),
                "parse_processes": importer.PARSE_PROCESSES,
                "parse_one_thread_rows_per_s": round(figures["parse_one_thread_rows_per_s"]),
                "pool_catch_up_s": round(pool_s, 1),
                "snapshot_s": round(snapshot_s, 2),
                "snapshot_gzip_mb": round(snapshot_bytes / 1e6, 1),
                "submit_to_feed_median_s": round(statistics.median(latencies), 3),
                "submit_to_feed_max_s": round(max(latencies), 3),
                "load_average_5min": [round(load_before, 1), round(os.getloadavg()[1], 1)],
                "targets": {
                    "ingest_items_per_s": 50_000,
                    "import_items_per_s": 50_000,
                    "snapshot_s": 10,
                    "submit_to_feed_s": 1,
                },
            }
        ).decode()
    )


def _import_line(items: int, figures: dict[str, float], load_before: float) -> dict[str, object]:
    return {
        "benchmark": "hub_sync",
        "part": "import",
        "items": items,
        "import_items_per_s": round(figures["import_items_per_s"]),
        "import_cpu_us_per_item": round(figures["import_cpu_us_per_item"], 1),
        "parse_only_rows_per_s": round(figures["parse_only_rows_per_s"]),
        "parse_processes": importer.PARSE_PROCESSES,
        "parse_one_thread_rows_per_s": round(figures["parse_one_thread_rows_per_s"]),
        "load_average_5min": [round(load_before, 1), round(os.getloadavg()[1], 1)],
        "targets": {"import_items_per_s": 50_000},
    }


if __name__ == "__main__":
    main()
