"""The hub's match path against HMA's figures (issue 12): a real `hashhub hub serve` holding N items.

    python benchmarks/hub_match.py [--items 1000000] [--seconds 10] [--clients 8] [--workers 1,2]
                                   [--reuse DIR]

Writes an NDJSON of N random PDQ+MD5 items and loads it with `hashhub hub import` (timed). `--reuse
DIR` keeps that database (and its keys) in DIR: the first run builds it, later runs skip the import
and report the import rate measured when it was built. A database with no saved pool yet (a fresh
import) is first served once to build the pool and save its files (`cold_build`: that start-up and
its memory). Then, for each worker count, it starts
`hashhub hub serve --workers W` on the SQLite file and times until every worker has started and a
match answers (start-up). Over loopback it measures:

- p50/p99 of 1,000 sequential single-hash match requests (half listed PDQs with 1-20 bits flipped,
  half random) on one keep-alive connection, with a raw-socket client (a few microseconds a request,
  so the client is not what is measured);
- requests/s answered 200 with `--clients` concurrent keep-alive connections for `--seconds` (the
  server runs with the member rate limit raised so that it refuses none): with `wrk` (a C load
  generator, `apt install wrk`) when it is installed, else with as many Python client threads on raw
  sockets; the JSON says which client measured;
- the time from an acknowledged submit to the first match that finds it (the match may land on
  another worker than the submit);
- resident memory of the server's whole process tree, idle and after the load: RSS summed, PSS
  summed and the distinct resident pages; after the load also those pages by part (each pool
  file, libraries, heap and anonymous memory) and each process's private pages (see `memory_mb`).

The load generator shares the machine with the server. Prints one JSON line, HMA's published figures
under "peer"; the top-level figures are those of the first worker count, every count is under
"by_workers".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psutil

from _random_hub import GRADE, HASHHUB, import_file, new_hub, write_items  # benchmarks/ is on sys.path

SAMPLES = 1000
FRESH_SUBMITS = 20
STARTED = b"Application startup complete"  # uvicorn logs it once per worker
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


def build(folder: Path, count: int, env: dict[str, str]) -> dict[str, Any]:
    """A hub database in `folder` with `count` imported items; returns what later runs need."""
    db = f"sqlite:///{folder / 'hub.db'}"
    keys = new_hub(db)
    items = folder / "items.ndjson"
    listed = write_items(items, count, samples=SAMPLES)
    import_s = import_file(items, db, env)
    return {"db": db, "items": count, "keys": keys, "listed": listed, "import_s": import_s}


def prepared(reuse: Path | None, tmp: Path, count: int, env: dict[str, str]) -> tuple[dict[str, Any], bool]:
    """The database to serve: the one kept in `reuse` when it holds `count` items, else a new one."""
    if reuse is None:
        return build(tmp, count, env), False
    meta_path = reuse / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["items"] == count:
            return meta, True
        shutil.rmtree(reuse)
    reuse.mkdir(parents=True, exist_ok=True)
    meta = build(reuse, count, env)
    meta_path.write_text(json.dumps(meta))
    return meta, False


def flip(pdq: str, bits: int, rng: random.Random) -> str:
    mask = sum(1 << b for b in rng.sample(range(256), bits))
    return f"{int(pdq, 16) ^ mask:064x}"


PAGE = os.sysconf("SC_PAGE_SIZE")
PRESENT, PFN_MASK = np.uint64(1 << 63), np.uint64((1 << 55) - 1)


def _part(path: str) -> str:
    """Which part of a hub process a mapping is: a pool file by name, libraries (shared objects and
    the interpreter), or the heap and anonymous memory (Python objects, numpy arrays, stacks)."""
    if not path or path.startswith("["):
        return "heap_and_anonymous"
    if ".pool/" in path:
        return "pool:" + path.rsplit("/", 1)[-1]
    return "libraries"


def resident_frames(pid: int) -> dict[str, np.ndarray]:
    """The physical page frames resident in `pid`'s mappings, by part (`_part`), from
    /proc/PID/pagemap; needs root, elsewhere the frame numbers read as 0 and the caller reports no
    figure."""
    frames: dict[str, list[np.ndarray]] = {}
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb", buffering=0) as pagemap:
        for line in maps:
            fields = line.split(maxsplit=5)
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            path = fields[5].strip() if len(fields) > 5 else ""
            if path == "[vsyscall]":
                continue
            pagemap.seek(lo // PAGE * 8)
            entries = np.frombuffer(pagemap.read((hi - lo) // PAGE * 8), dtype=np.uint64)
            frames.setdefault(_part(path), []).append(entries[(entries & PRESENT) != 0] & PFN_MASK)
    return {part: np.concatenate(found) for part, found in frames.items()}


def _mb(pages: int) -> float:
    return round(pages * PAGE / 2**20, 1)


def memory_mb(pid: int) -> dict[str, Any]:
    """Memory of the server's process tree, three ways, plus where the distinct pages are:

    - RSS summed: a page shared by several processes (the forked workers share the parent's) is
      counted once per process, so this overstates what the tree holds;
    - PSS summed: each page split evenly among every process mapping it, so pages the tree shares
      with processes outside it (shared libraries other Python programs on the machine have
      loaded) count only in part: this understates it on a busy machine;
    - unique: the distinct physical pages resident in any process of the tree, each counted once,
      wherever else it is mapped: what all hub processes hold together (None without root);
    - `parts`: the unique pages by part (each pool file, libraries, heap and anonymous memory), and
      `private`: each process's pages no other process maps (USS; the parent first: with pre-fork
      workers, a worker's are mostly heap pages it copied on write).
    """
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    infos = [p.memory_full_info() for p in procs]
    unique, parts = None, None
    try:
        by_part: dict[str, list[np.ndarray]] = {}
        for p in procs:
            for part, found in resident_frames(p.pid).items():
                by_part.setdefault(part, []).append(found)
        distinct = {part: np.unique(np.concatenate(found)) for part, found in by_part.items()}
        every = np.unique(np.concatenate(list(distinct.values())))
        if every.size and every.max():
            unique = _mb(every.size)
            parts = {part: _mb(f.size) for part, f in sorted(distinct.items(), key=lambda kv: -kv[1].size)}
    except OSError:
        pass
    return {
        "rss_mb": round(sum(i.rss for i in infos) / 2**20, 1),
        "pss_mb": round(sum(i.pss for i in infos) / 2**20, 1),
        "unique_mb": unique,
        "parts_mb": parts,
        "private_mb": [round(i.uss / 2**20, 1) for i in infos],
        "processes": len(procs),
    }


class RawClient:
    """A keep-alive HTTP/1.1 client on a bare socket: a prepared request, the response read by its
    Content-Length. Costs a few microseconds a call, so timings are the server's."""

    def __init__(self, port: int, key: str) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._head = (
            "POST /api/v1/match HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key}\r\nContent-Length: "
        ).encode()
        self._buffer = b""

    def match(self, pdq: str) -> tuple[int, bytes]:
        body = b'{"fingerprints":[{"pdq":"' + pdq.encode() + b'"}]}'
        self._sock.sendall(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
        while b"\r\n\r\n" not in self._buffer:
            self._read()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        status = int(head[9:12])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        while len(rest) < length:
            self._buffer = head + b"\r\n\r\n" + rest
            self._read()
            head, _, rest = self._buffer.partition(b"\r\n\r\n")
        self._buffer = rest[length:]
        return status, rest[:length]

    def _read(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    def close(self) -> None:
        self._sock.close()


def matched(status: int, body: bytes) -> bool:
    return status == 200 and bool(orjson.loads(body)["results"][0]["matches"])


def wait_started(port: int, key: str, proc: subprocess.Popen, log: Path, workers: int, pdq: str) -> None:
    """Until every worker has logged its start-up (the app factory loads the pool before that) and a
    match answers 200."""
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"hub serve exited {proc.returncode}: {log.read_text()[-2000:]}")
        if log.read_bytes().count(STARTED) >= workers:
            try:
                client = RawClient(port, key)
                try:
                    if client.match(pdq)[0] == 200:
                        return
                finally:
                    client.close()
            except OSError:
                pass
        time.sleep(0.05)


def sequential(client: RawClient, queries: list[tuple[str, bool]]) -> dict[str, Any]:
    ms, near_hits = [], 0
    for pdq, near in queries:
        started = time.perf_counter()
        status, body = client.match(pdq)
        ms.append((time.perf_counter() - started) * 1000)
        near_hits += near and matched(status, body)
    return {
        "match_p50_ms": round(float(np.percentile(ms, 50)), 3),
        "match_p99_ms": round(float(np.percentile(ms, 99)), 3),
        "near_duplicates_found": f"{near_hits}/{sum(near for _, near in queries)}",
    }


WRK_SCRIPT = """
local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, "/api/v1/match", nil, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format(
    'WRK {"requests": %%d, "non_200": %%d, "errors": %%d, "p50_ms": %%.3f, "p99_ms": %%.3f}\\n',
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def concurrent_wrk(port: int, key: str, pdqs: list[str], seconds: float, clients: int, tmp: Path) -> dict:
    bodies = ",".join(f'\'{{"fingerprints":[{{"pdq":"{p}"}}]}}\'' for p in pdqs)
    script = tmp / "match.lua"
    script.write_text(WRK_SCRIPT % (bodies, key))
    threads = min(clients, 2)  # wrk threads are event loops: 2 drive 8 connections on a 2-core box
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{clients}",
            f"-d{seconds:g}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRK "))
    got = json.loads(line[4:])
    failed = got["non_200"] + got["errors"]
    return {
        "requests_per_s": round((got["requests"] - failed) / seconds, 1),  # answered 200 only
        "non_200": failed,
        "concurrent_p50_ms": got["p50_ms"],
        "concurrent_p99_ms": got["p99_ms"],
        "load_client": f"wrk -t{threads} -c{clients}",
    }


def concurrent_python(port: int, key: str, pdqs: list[str], seconds: float, clients: int) -> dict:
    counts, failures = [0] * clients, [0] * clients
    stop_at = time.monotonic() + seconds

    def worker(i: int) -> None:
        rng = random.Random(i)
        client = RawClient(port, key)
        try:
            while time.monotonic() < stop_at:
                failures[i] += client.match(rng.choice(pdqs))[0] != 200
                counts[i] += 1
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "requests_per_s": round((sum(counts) - sum(failures)) / seconds, 1),  # answered 200 only
        "non_200": sum(failures),
        "load_client": f"{clients} Python threads, raw sockets",
    }


def submit_to_match(contrib: httpx.Client, member: RawClient, rng: random.Random, run: str) -> list[float]:
    """Seconds from each acknowledged submit until a match request finds the new hash."""
    out = []
    for i in range(FRESH_SUBMITS):
        pdq = f"{rng.getrandbits(256):064x}"
        row = {"external_id": f"fresh-{run}-{i}", "classification": GRADE, "fingerprints": {"pdq": pdq}}
        r = contrib.post("/api/v1/items", json={"list": "verified", "items": [row]})
        assert r.status_code == 200, r.text
        acked = time.perf_counter()
        while not matched(*member.match(pdq)):
            if time.perf_counter() - acked > 300:
                raise SystemExit("a submitted hash was not matchable after 300 s")
        out.append(time.perf_counter() - acked)
    return out


def serve_and_measure(opts: argparse.Namespace, meta: dict, workers: int, tmp: Path, env: dict) -> dict:
    port, keys, listed = opts.port, meta["keys"], meta["listed"]
    log_path = tmp / f"hub-{workers}.log"
    rng = random.Random(11)
    queries = [
        (flip(listed[i], rng.randint(1, 20), rng), True)
        if i % 2 == 0
        else (f"{rng.getrandbits(256):064x}", False)
        for i in range(SAMPLES)
    ]
    with ExitStack() as stack:
        log = stack.enter_context(log_path.open("wb"))
        started = time.perf_counter()
        args = ["hub", "serve", "--db", meta["db"], "--port", str(port), "--workers", str(workers)]
        # The member rate limit (1,000/s per key by default) would cap the load test: raise it, so the
        # limiter still runs on every request but refuses none.
        limits = {"admin": 0, "contributor": 200, "member": 1e9, "anonymous": 200}
        env = {**env, "HASHHUB_RATE_LIMITS": json.dumps(limits)}
        proc = subprocess.Popen([*HASHHUB, *args], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_started(port, keys["plat"], proc, log_path, workers, listed[0])
            startup_s = time.perf_counter() - started
            idle = memory_mb(proc.pid)
            member = RawClient(port, keys["plat"])
            stack.callback(member.close)
            for pdq, _ in queries[:50]:  # a warm-up on this connection, not timed
                member.match(pdq)
            seq = sequential(member, queries)
            pdqs = [q for q, _ in queries]
            if shutil.which("wrk") and opts.client != "python":
                conc = concurrent_wrk(port, keys["plat"], pdqs, opts.seconds, opts.clients, tmp)
            else:
                conc = concurrent_python(port, keys["plat"], pdqs, opts.seconds, opts.clients)
            headers = {"Authorization": f"Bearer {keys['contrib']}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as contrib:
                fresh = submit_to_match(contrib, member, rng, f"{int(time.time())}-{workers}")
            after = memory_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return {
        "workers": workers,
        "startup_s": round(startup_s, 2),
        **seq,
        "clients": opts.clients,
        **conc,
        "submit_to_match_s_median": round(float(np.median(fresh)), 3),
        "submit_to_match_s_max": round(max(fresh), 3),
        "rss_mb_idle": idle["rss_mb"],
        "pss_mb_idle": idle["pss_mb"],
        "unique_mb_idle": idle["unique_mb"],
        "rss_mb_after_load": after["rss_mb"],
        "pss_mb_after_load": after["pss_mb"],
        "unique_mb_after_load": after["unique_mb"],
        "unique_mb_after_load_by_part": after["parts_mb"],
        "private_mb_after_load": after["private_mb"],
        "server_processes": after["processes"],
    }


def cold_build(opts: argparse.Namespace, meta: dict, tmp: Path, env: dict) -> dict | None:
    """When the database has no saved pool yet (a fresh import): one `serve` that builds the pool
    from the database and saves its files, timed to its first match, and its memory then. The
    measured runs that follow start, as issue 12 defines start-up, from those saved files."""
    pool = Path(meta["db"] + ".pool")
    if (pool / "CURRENT").exists():
        return None
    args = ["hub", "serve", "--db", meta["db"], "--port", str(opts.port), "--workers", "1"]
    log_path = tmp / "hub-cold.log"
    with log_path.open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen([*HASHHUB, *args], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_started(opts.port, meta["keys"]["plat"], proc, log_path, 1, meta["listed"][0])
            startup_s = time.perf_counter() - started
            idle = memory_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return {"startup_s": round(startup_s, 2), "unique_mb_idle": idle["unique_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--port", type=int, default=18951)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to serve with")
    parser.add_argument("--reuse", type=Path, help="keep the built database here and reuse it next time")
    parser.add_argument("--client", choices=("auto", "python"), default="auto", help="python: never wrk")
    opts = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHHUB_")}
    with tempfile.TemporaryDirectory(prefix="hub-match-") as tmp_name:
        tmp = Path(tmp_name)
        meta, reused = prepared(opts.reuse, tmp, opts.items, env)
        cold = cold_build(opts, meta, tmp, env)
        runs = [serve_and_measure(opts, meta, int(w), tmp, env) for w in opts.workers.split(",")]
    first = {k: v for k, v in runs[0].items() if k != "workers"}
    report = {
        "benchmark": "hub_match",
        "items": opts.items,
        "import_s": round(meta["import_s"], 1),
        "import_items_per_s": round(opts.items / meta["import_s"]),
        "import_reused": reused,  # true: the import rate is the one measured when --reuse built it
        # the first serve after the import: pool built from the database and saved (None: files existed)
        "cold_build": cold,
        **first,
        "by_workers": runs,
        "cpu_cores": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),  # other work sharing the machine
        "peer": PEER,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
