"""Hub write-side benchmark: `ingest.submit_parsed` over pre-parsed rows. Prints ONE JSON line.

    flock /tmp/hashhub-bench.lock .venv/bin/python benchmarks/hub_write.py            # 1,000,000 items
    flock /tmp/hashhub-bench.lock .venv/bin/python benchmarks/hub_write.py --items 200000

Only the writer is timed: each batch of 10,000 random PDQ + MD5 items is parsed first (`rows.parse_rows`,
untimed; `hashhub hub import` does that in another process), then written by `ingest.submit_parsed`
(dedup lookups, item rows, feed changes, cursor, audit, commit) into a fresh SQLite file:
`write_items_per_s` with a transaction a batch, as `POST /api/v1/items` commits;
`write_in_groups_items_per_s` with batches committed in groups, as `hashhub hub import` commits
(`hashhub.hub.grouped`).

For scale, the same run measures the floor of the schema before migration 0004 (four rows an item:
the item with its document, two `fingerprints` rows, a `changes` row; today's indexes and foreign
keys) as a bare `sqlite3` `executemany` of tuples built ahead, with the hub's connection settings:
no Python of ours at all. The database is made by `db.create_engine`, so this floor has today's
16 KiB pages and 128 MB checkpoint interval too (the schema's cost, not the settings', is compared).
`write_items_per_s` above `old_schema_floor_items_per_s` means the writer, Python included, beats
what the old schema allowed before any Python ran.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.hub_sync import BATCH, batches

from hashhub import db, grading
from hashhub.hub import grouped, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.rows import Row, parse_rows
from hashhub.hub.settings import HubSettings

_OLD_SCHEMA = "0003"  # the last revision with the separate `fingerprints` table


def measure_writer(
    url: str, total: int, *, in_groups: bool = False
) -> tuple[float, dict[str, grading.Scheme]]:
    """Items/s of `submit_parsed`, and the grading schemes the rows were parsed with: a transaction
    a batch as POST commits, or (`in_groups`) batches committed in groups as the import does."""
    hub = Hub(HubSettings(db=url))
    try:
        orgs.create_org(hub.engine, "bench-writer", ["contributor"])
        orgs.create_list(hub.engine, "bench", write=["bench-writer"])
        principal = orgs.acting_as(hub.engine, "bench-writer")
        where = ingest.target(hub, principal, "bench")
        group = grouped.Group(hub.engine)
        spent = 0.0
        for raw in batches(total):
            good, rejected = parse_rows(raw, where.schemes)
            t = time.perf_counter()
            conn = group.connection() if in_groups else None
            ingest.submit_parsed(hub, principal, where, good, rejected, len(raw), conn=conn)
            if in_groups:
                group.written(len(raw))
            spent += time.perf_counter() - t
        t = time.perf_counter()
        group.commit()
        spent += time.perf_counter() - t
        return total / spent, where.schemes
    finally:
        hub.close()


def _old_rows(rows: list[Row], start_id: int, now: float) -> tuple[list[tuple], list[tuple], list[tuple]]:
    item_rows, fp_rows, change_rows = [], [], []
    for n, row in enumerate(rows):
        item_id = start_id + n
        doc = b'{"id":"%d",%s}' % (item_id, row.body)
        item_rows.append(
            (
                item_id, 1, 1, row.external_id, row.content_type, row.scheme, row.classification,
                row.reviewers, "active", row.fp_key, now, now, doc,
            )
        )  # fmt: skip
        fp_rows.extend((item_id, s, v, None) for s, v in row.fingerprints.items())
        change_rows.append((item_id, item_id, "upsert", "new", now))
    return item_rows, fp_rows, change_rows


def measure_old_floor(path: Path, total: int, schemes: dict[str, grading.Scheme]) -> float:
    """Items/s of bare executemany into the pre-0004 schema (see the module docstring)."""
    url = f"sqlite:///{path}"
    engine = db.create_engine(url)
    db.upgrade(engine, "hashhub:migrations", _OLD_SCHEMA)
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-65536"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("INSERT INTO organisations (id, name, roles, created_at) VALUES (1, 'o', 'contributor', 0)")
    conn.execute("INSERT INTO lists (id, name, created_at) VALUES (1, 'l', 0)")
    engine.dispose()
    spent = 0.0
    next_id = 1
    for raw in batches(total):
        good, _ = parse_rows(raw, schemes)
        assert len(good) == len(raw), "the benchmark's rows must all be valid"
        item_rows, fp_rows, change_rows = _old_rows(good, next_id, time.time())
        next_id += len(good)
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT INTO items VALUES ({', '.join('?' * 13)})", item_rows)
        conn.executemany("INSERT INTO fingerprints VALUES (?, ?, ?, ?)", fp_rows)
        conn.executemany("INSERT INTO changes VALUES (?, ?, ?, ?, ?)", change_rows)
        conn.execute("COMMIT")
        spent += time.perf_counter() - t
    conn.close()
    return total / spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    args = parser.parse_args()
    load_before = os.getloadavg()[1]
    with tempfile.TemporaryDirectory(prefix="hub-write-") as tmp:
        rate, schemes = measure_writer(f"sqlite:///{Path(tmp) / 'write.db'}", args.items)
        grouped_rate, _ = measure_writer(f"sqlite:///{Path(tmp) / 'grouped.db'}", args.items, in_groups=True)
        floor = measure_old_floor(Path(tmp) / "old.db", args.items, schemes)
    result = {
        "benchmark": "hub_write",
        "backend": "sqlite",
        "items": args.items,
        "batch": BATCH,
        "write_items_per_s": round(rate),
        "write_in_groups_items_per_s": round(grouped_rate),
        "old_schema_floor_items_per_s": round(floor),
        "write_us_per_item": round(1e6 / rate, 1),
        "write_in_groups_us_per_item": round(1e6 / grouped_rate, 1),
        "old_schema_floor_us_per_item": round(1e6 / floor, 1),
        "load_average_5min": [round(load_before, 1), round(os.getloadavg()[1], 1)],
        "target_items_per_s": 50_000,
    }
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
