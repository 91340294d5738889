"""Web UI page times on a large hub. Prints ONE JSON line.

    .venv/bin/python benchmarks/web_pages.py                    # 1,000,000 items on SQLite (temp file)
    .venv/bin/python benchmarks/web_pages.py --items 3500000 --db postgresql+psycopg://...

Items are made-up fingerprints ingested through the hub's own service (benchmarks/hub_sync.py's
batches); 200 of them are disputed. A real uvicorn server serves the hub; a signed-in browser session
(cookie) fetches each page over HTTP. Reported in milliseconds: the dashboard's first load (which
starts counting the visible pool in the background and waits for it at most 1 s), how long until its
figures appear (seconds), its later loads (median of 10; cached, recounted in the background each
minute), and the median of 10 loads of each paginated page. The first search also includes the hub's
match pool catching up with every ingested item (the match API pays the same once), so it is reported
apart from later searches.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.hub_sync import batches
from tests.hub.conftest import serving

from hashhub.hub import feedback, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.settings import HubSettings


def sign_in(url: str, key: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=600)
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


def median_ms(client: httpx.Client, path: str, rounds: int = 10) -> float:
    return round(statistics.median(timed(client, path) for _ in range(rounds)), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="hub database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{tmp}/hub.db"
        hub = Hub(HubSettings(db=db, dispute_threshold=1))
        admin = orgs.create_org(hub.engine, "bench-admin", ["admin"])["api_key"]
        orgs.create_org(hub.engine, "bench-contributor", ["contributor"])
        analyst = orgs.create_org(hub.engine, "bench-analyst", ["member", "contributor"])
        orgs.create_list(
            hub.engine, "bench", read=["bench-analyst"], write=["bench-contributor", "bench-analyst"]
        )
        t = time.perf_counter()
        contributor = orgs.acting_as(hub.engine, "bench-contributor")
        first_pdq = ""
        for rows in batches(args.items):
            first_pdq = first_pdq or rows[0]["fingerprints"]["pdq"]
            ingest.submit(hub, contributor, "bench", rows)
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
        build_s = time.perf_counter() - t

        with serving(hub) as url:
            browser = sign_in(url, analyst["api_key"])
            admin_browser = sign_in(url, admin)
            cold = timed(browser, "/")
            t = time.perf_counter()
            while "hits reported" not in browser.get("/").text:  # counting runs in the background
                time.sleep(0.2)
            counted_s = time.perf_counter() - t + cold / 1000
            first_search = timed(browser, f"/search?signal=pdq&q={first_pdq}")
            page = {
                "dashboard_first_ms": round(cold, 1),
                "dashboard_counted_s": round(counted_s, 1),
                "dashboard_ms": median_ms(browser, "/"),
                "search_first_ms": round(first_search, 1),
                "search_ms": median_ms(browser, f"/search?signal=pdq&q={first_pdq}"),
                "item_ms": median_ms(browser, f"/items/{args.items // 2}"),
                "changes_ms": median_ms(browser, "/changes"),
                "changes_deep_page_ms": median_ms(browser, f"/changes?before={args.items // 3}"),
                "disputes_ms": median_ms(browser, "/disputes"),
                "audit_ms": median_ms(admin_browser, "/audit"),
                "admin_ms": median_ms(admin_browser, "/admin"),
            }
            browser.close()
            admin_browser.close()
        hub.close()
    print(
        orjson.dumps(
            {"benchmark": "web_pages", "items": args.items + 200, "build_s": round(build_s, 1), **page}
        ).decode()
    )


if __name__ == "__main__":
    main()
