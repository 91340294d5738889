"""Two `hashhub hub serve` processes on one PostgreSQL: writes to both, a member reading the feed
from both in turn sees every committed change exactly once, in order, with no gaps."""

from __future__ import annotations

import random
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.agent.procs import HASHHUB, env, free_port, wait_http
from tests.support.hubs import contributor_and_member

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
WRITERS, BATCHES, BATCH = 4, 10, 50


@contextmanager
def _serve(db: str, log: Path) -> Iterator[str]:
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*HASHHUB, "hub", "serve", "--db", db, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env(),
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_two_hub_processes_keep_the_feed_ordered_and_complete(postgres_url: str, tmp_path: Path) -> None:
    keys = contributor_and_member(postgres_url)
    contrib, member = keys["contrib"], keys["plat"]
    with ExitStack() as stack:
        urls = [stack.enter_context(_serve(postgres_url, tmp_path / f"hub{i}.log")) for i in range(2)]
        errors: list[BaseException] = []
        done = threading.Event()

        def write(seed: int) -> None:
            rng = random.Random(seed)
            try:
                with httpx.Client(headers={"Authorization": f"Bearer {contrib}"}, timeout=60) as c:
                    for b in range(BATCHES):
                        rows = [
                            {
                                "fingerprints": {"pdq": f"{rng.getrandbits(256):064x}"},
                                "classification": {"scheme": "industry", "value": "A1"},
                            }
                            for _ in range(BATCH)
                        ]
                        r = c.post(f"{urls[b % 2]}/api/v1/items", json={"list": "verified", "items": rows})
                        assert r.status_code == 200, r.text
            except BaseException as exc:
                errors.append(exc)

        seen: list[int] = []

        def read() -> None:
            after, turn = 0, 0
            with httpx.Client(headers={"Authorization": f"Bearer {member}"}, timeout=60) as c:
                while True:
                    finished = done.is_set()
                    page = c.get(f"{urls[turn % 2]}/api/v1/feed", params={"after": after, "limit": 37}).json()
                    seen.extend(change["cursor"] for change in page["changes"])
                    after, turn = page["next"], turn + 1
                    if finished and not page["has_more"]:
                        return

        writers = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
        reader = threading.Thread(target=read)
        reader.start()
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        done.set()
        reader.join(timeout=120)
        assert not errors, errors
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            committed = [r[0] for r in conn.execute(sa.text("SELECT cursor FROM changes ORDER BY cursor"))]
    finally:
        engine.dispose()
    assert len(committed) == WRITERS * BATCHES * BATCH
    assert seen == committed  # every change once, in order, none skipped
