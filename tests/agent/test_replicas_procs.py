"""Two real `hashhub agent serve` processes on one store, following a real hub.

One syncs (the store's leader lock decides which), the other follows the store; both answer scans
the same; a withdrawal synced by one stops matching at the other within seconds; kill -9 of the
syncing one hands syncing to the other; a restarted replica starts from the saved files.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from .conftest import cli_app
from .procs import env, free_port, server

pytestmark = pytest.mark.slow
AGENT_KEY = "replica-test-key"
#: how long a change may take to reach a replica (sync and follow every 1 s, plus a busy-machine margin)
WITHIN_S = 8.0


def _items(rng: random.Random, count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "external_id": f"{prefix}-{i}",
            "content_type": "image",
            "classification": {"scheme": "industry", "value": "A1"},
            "verification": {"reviewers": 2},
            "labels": {},
            "fingerprints": {"pdq": f"{rng.getrandbits(256):064x}", "md5": f"{rng.getrandbits(128):032x}"},
        }
        for i in range(count)
    ]


def _until(check: Callable[[], bool], seconds: float) -> float:
    """Seconds until `check()` holds; fails the test after `seconds`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.1)
    return time.monotonic() - started


class Agent:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {AGENT_KEY}"}, timeout=30)

    def status(self) -> dict[str, Any]:
        return self.http.get("/api/v1/status").json()

    def scan(self, fingerprints: dict[str, str]) -> dict[str, Any]:
        answer = self.http.post("/api/v1/scan", json={"fingerprints": fingerprints})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def matched(self, item: dict[str, Any]) -> bool:
        return self.scan({"pdq": item["fingerprints"]["pdq"]})["matched"]


def _seen(answer: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(m["item"], m["signal"], m["distance"]) for m in answer["matches"]]


def test_two_agent_processes_share_one_store(tmp_path: Path) -> None:
    rng = random.Random(12)
    hub_db = f"sqlite:///{tmp_path / 'hub.db'}"
    app, runner = cli_app(), CliRunner()

    def admin(*args: str) -> dict:
        result = runner.invoke(app, [*args, "--db", hub_db])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if result.stdout.strip() else {}

    contributor = admin("hub", "org", "create", "hotline", "--role", "contributor")["api_key"]
    member = admin("hub", "org", "create", "platform", "--role", "member")["api_key"]
    admin("hub", "list", "create", "verified", "--read", "platform", "--write", "hotline")
    hub_port = free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    agent_db = str(tmp_path / "agent.db")

    def agent_serve(stack: ExitStack, name: str) -> tuple[Agent, Any]:
        port = free_port()
        proc = stack.enter_context(
            server(
                *("agent", "serve", "--hub", hub_url, "--db", agent_db, "--port", str(port)),
                *("--api-key", AGENT_KEY, "--sync-interval", "1"),
                health=f"http://127.0.0.1:{port}/healthz",
                log=tmp_path / f"{name}.log",
                env=env(HASHHUB_KEY=member),
            )
        )
        return Agent(f"http://127.0.0.1:{port}"), proc

    with ExitStack() as stack:
        stack.enter_context(
            server(
                *("hub", "serve", "--db", hub_db, "--port", str(hub_port)),
                health=f"{hub_url}/healthz",
                log=tmp_path / "hub.log",
            )
        )
        hub = stack.enter_context(
            httpx.Client(base_url=hub_url, headers={"Authorization": f"Bearer {contributor}"}, timeout=60)
        )

        def submit(items: list[dict[str, Any]]) -> list[str]:
            answer = hub.post("/api/v1/items", json={"list": "verified", "items": items})
            assert answer.status_code == 200, answer.text
            return [entry["id"] for entry in answer.json()["items"]]

        listed = _items(rng, 30, "first")
        ids = submit(listed)
        (a, proc_a), (b, proc_b) = agent_serve(stack, "agent-a"), agent_serve(stack, "agent-b")
        _until(lambda: a.status()["items"] == 30 and b.status()["items"] == 30, 30)
        roles = {a.url: a.status()["replica"], b.url: b.status()["replica"]}
        assert sorted(roles.values()) == ["follower", "leader"], roles
        assert httpx.get(f"{a.url}/healthz").json()["replica"] == roles[a.url]  # no key needed
        leader, follower = (a, b) if roles[a.url] == "leader" else (b, a)
        leader_proc = proc_a if leader is a else proc_b

        # Both answer the same, for listed items and for hashes nobody listed.
        queries = [{"pdq": i["fingerprints"]["pdq"], "md5": i["fingerprints"]["md5"]} for i in listed[:10]]
        queries += [{"pdq": i["fingerprints"]["pdq"]} for i in _items(rng, 5, "unlisted")]
        at_leader, at_follower = [leader.scan(q) for q in queries], [follower.scan(q) for q in queries]
        assert [_seen(x) for x in at_leader] == [_seen(x) for x in at_follower]
        assert [x["matched"] for x in at_follower] == [True] * 10 + [False] * 5
        assert [x["action"] for x in at_leader] == [x["action"] for x in at_follower]

        # A withdrawal at the hub: the leader syncs it, the follower picks it up from the store.
        gone = hub.post(f"/api/v1/items/{ids[0]}/withdraw", json={"reason": "listed in error"})
        assert gone.status_code == 200, gone.text
        took = _until(lambda: not follower.matched(listed[0]), WITHIN_S)
        assert not leader.matched(listed[0]) and follower.matched(listed[1])
        print(f"\nwithdrawal reached the follower in {took:.1f} s")

        # kill -9 the syncing replica: the other takes over syncing.
        leader_proc.kill()
        leader_proc.wait(timeout=30)
        fresh = _items(rng, 3, "after-kill")
        submit(fresh)
        took = _until(lambda: all(follower.matched(i) for i in fresh), WITHIN_S + 4)
        assert follower.status()["replica"] == "leader"
        print(f"new items matched at the surviving replica {took:.1f} s after the kill")

        # The killed replica restarts from the saved files plus the changes after them.
        restarted, _ = agent_serve(stack, "agent-restarted")
        start_up = restarted.status()["start_up"]
        assert start_up["source"] == "files", start_up
        assert restarted.status()["items"] == follower.status()["items"] == 32
        assert [_seen(restarted.scan(q)) for q in queries] == [_seen(follower.scan(q)) for q in queries]
