"""`hashhub hub serve --workers 2`: one port, two processes, each following the database. Answers are
the same whichever worker takes a request, a submit matches at every worker within a second, and
shutting the server down writes the match audit records still pending."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import psutil
import pytest
import sqlalchemy as sa
from tests.agent.procs import free_port, server
from tests.hub.conftest import flip_bits, item
from tests.support.hubs import contributor_and_member

from hashhub.hub import audit
from hashhub.hub.models import audit_log

FOLLOW_S = 1.0
WORKERS = 2


@dataclass
class Served:
    base: str
    url: str
    contrib: str
    member: str
    proc: psutil.Process

    def clients(self, key: str, n: int) -> list[httpx.Client]:
        """`n` clients, each on a connection of its own (so the kernel spreads them over the workers)."""
        headers = {"Authorization": f"Bearer {key}"}
        return [httpx.Client(base_url=self.base, headers=headers, timeout=30) for _ in range(n)]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    keys = contributor_and_member(url)
    contrib, member = keys["contrib"], keys["plat"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ("hub", "serve", "--db", url, "--port", str(port), "--workers", str(WORKERS))
    with server(*args, health=f"{base}/healthz", log=tmp_path / "hub.log") as proc:
        yield Served(base, url, contrib, member, psutil.Process(proc.pid))


def _worker_pids(served: Served) -> set[int]:
    """The serving workers: the processes the server forked (it only supervises them)."""
    return {p.pid for p in served.proc.children() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE}


def _matches(client: httpx.Client, queries: list[dict[str, str]]) -> list[dict]:
    r = client.post("/api/v1/match", json={"fingerprints": queries})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_two_workers_answer_alike_and_follow_each_others_submits_within_a_second(served: Served) -> None:
    deadline = time.monotonic() + 60
    while len(_worker_pids(served)) < WORKERS:  # both workers are up (the health check saw one)
        assert time.monotonic() < deadline, "the second worker did not start"
        time.sleep(0.1)
    members = served.clients(served.member, 8)
    (writer,) = served.clients(served.contrib, 1)
    try:
        lags, submitted = [], []
        for n in range(6):
            row = item(f"w-{n}")
            pdq = row["fingerprints"]["pdq"]
            r = writer.post("/api/v1/items", json={"list": "verified", "items": [row]})
            assert r.status_code == 200, r.text
            acked = time.perf_counter()
            item_id = r.json()["items"][0]["id"]
            for client in members:  # every connection, whichever worker holds it
                while item_id not in [m["item"] for m in _matches(client, [{"pdq": pdq}])[0]["matches"]]:
                    assert time.perf_counter() - acked <= FOLLOW_S, "a worker had not caught up within 1 s"
            lags.append(time.perf_counter() - acked)
            submitted.append(pdq)
        rng = random.Random(5)
        queries = [
            {"pdq": q}
            for q in [*submitted, *(flip_bits(p, 7) for p in submitted), f"{rng.getrandbits(256):064x}"]
        ]
        answers = [_matches(client, queries) for client in members]
        assert all(a == answers[0] for a in answers)
        assert sum(bool(r["matches"]) for r in answers[0]) == 2 * len(submitted)
        assert max(lags) <= FOLLOW_S
    finally:
        for client in [*members, writer]:
            client.close()


def test_stopping_the_server_writes_every_workers_pending_match_records(
    tmp_path: Path, served: Served
) -> None:
    members = served.clients(served.member, 6)
    try:
        for client in members:
            _matches(client, [{"md5": "0" * 32}])
    finally:
        for client in members:
            client.close()
    served.proc.send_signal(2)  # Ctrl-C: the server stops its workers in order
    served.proc.wait(30)
    engine = sa.create_engine(served.url)
    try:
        with engine.connect() as conn:
            details = [
                orjson.loads(d)
                for d in conn.execute(
                    sa.select(audit_log.c.detail).where(audit_log.c.action == "match")
                ).scalars()
            ]
        assert sum(d["requests"] for d in details) == 6
        assert audit.verify(engine).ok
    finally:
        engine.dispose()
