"""Peer-protocol read benchmark: a whole list through threatexchange's own clients. Prints ONE JSON line.

    .venv/bin/python benchmarks/compat_read.py                  # 100,000 items on SQLite (a temp file)
    .venv/bin/python benchmarks/compat_read.py --items 20000 --db postgresql+psycopg://...

Made-up PDQ + MD5 image items (random bytes, as in hub_sync) are ingested through the hub's service,
then a real uvicorn server on loopback is read end to end by: python-threatexchange's NCMEC client
(`get_entries_iter` over all time, 1,000 entries a page), its StopNCII client (`fetch_hashes_iter`,
800 a page), and the hashhub threatexchange extension (`fetch_iter` over the native feed). Each
count is checked against the list; rates are entries (or records) a second, client parsing included.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.hub_sync import batches
from tests.hub.conftest import serving
from threatexchange.exchanges.clients.ncmec import hash_api
from threatexchange.exchanges.clients.stopncii import api as stopncii_api

from hashhub.hub import ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.settings import HubSettings
from hashhub.integrations.threatexchange import HashhubCollabConfig, HashhubSignalExchangeAPI


def timed(count_pages) -> tuple[float, int]:
    t = time.perf_counter()
    n = count_pages()
    return time.perf_counter() - t, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--db", default=None, help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        hub = Hub(HubSettings(db=url))
        orgs.create_org(hub.engine, "bench-contributor", ["contributor"])
        key = orgs.create_org(hub.engine, "bench-member", ["member"])["api_key"]
        orgs.create_list(hub.engine, "bench", read=["bench-member"], write=["bench-contributor"])
        contributor = orgs.acting_as(hub.engine, "bench-contributor")
        for rows in batches(args.items):
            ingest.submit(hub, contributor, "bench", rows)
        hub.refresh()
        with serving(hub) as base:
            ncmec = hash_api.NCMECHashAPI("bench-member", key, hash_api.NCMECEnvironment.test_NGO)
            ncmec._base_url = base + "/compat/ncmec"
            end = int(time.time()) + 60
            ncmec_s, ncmec_n = timed(
                lambda: sum(
                    len(p.updates) for p in ncmec.get_entries_iter(start_timestamp=0, end_timestamp=end)
                )
            )
            stop = stopncii_api.StopNCIIAPI(key, key, base_url_override=base + "/compat/stopncii/v1")
            stop_s, stop_n = timed(lambda: sum(len(p.hashRecords) for p in stop.fetch_hashes_iter()))
            ext = HashhubSignalExchangeAPI(HashhubCollabConfig(name="bench", hub_url=base), key)
            ext_s, ext_n = timed(lambda: sum(len(d.updates) for d in ext.fetch_iter([], None)))
        hub.close()
    for name, n in (("ncmec", ncmec_n), ("stopncii", stop_n), ("extension", ext_n)):
        if n != args.items:
            raise SystemExit(f"{name} read {n} entries, expected {args.items}")
    print(
        orjson.dumps(
            {
                "benchmark": "compat_read",
                "backend": url.split(":", 1)[0],
                "items": args.items,
                "ncmec_entries_per_s": round(ncmec_n / ncmec_s),
                "stopncii_records_per_s": round(stop_n / stop_s),
                "extension_items_per_s": round(ext_n / ext_s),
                "ncmec_s": round(ncmec_s, 2),
                "stopncii_s": round(stop_s, 2),
                "extension_s": round(ext_s, 2),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
