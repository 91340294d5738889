"""Replicas in one process (fast; the same loop `agent serve` runs), on SQLite and PostgreSQL: one
leader talks to the hub, the follower only reads the store, and stopping the leader hands over."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from hashhub.agent.runtime import AgentRuntime
from hashhub.agent.settings import make_settings

from .conftest import HUB_URL, KEY, FakeHub, make_item, pdq_hex


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    return (
        str(tmp_path / "agent.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    )


def _wait(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def test_one_replica_syncs_the_other_follows_and_takes_over(db_url: str, fake_hub: FakeHub) -> None:
    callers: list[str] = []

    def replica(name: str) -> AgentRuntime:
        def client(hub):
            callers.append(name)
            return fake_hub.client(hub.url)

        return AgentRuntime(make_settings(db=db_url, sync_interval=0.3), make_client=client)

    a, b = replica("a"), replica("b")
    try:
        a.store.follow(HUB_URL, KEY)
        for rt in (a, b):
            rt.load()
            rt.start_background_sync()
        fake_hub.upsert(make_item(1))
        _wait(lambda: all(rt.matcher.match({"pdq": pdq_hex(1)}) for rt in (a, b)))
        assert sorted([a.role, b.role]) == ["follower", "leader"]
        leader, follower = (a, b) if a.role == "leader" else (b, a)
        assert set(callers) == {"a" if leader is a else "b"}  # the follower never called the hub

        fake_hub.delete("item-1")
        _wait(lambda: not follower.matcher.match({"pdq": pdq_hex(1)}), 5)

        leader.stop()  # a replica going away frees the leader lock
        fake_hub.upsert(make_item(2))
        _wait(lambda: bool(follower.matcher.match({"pdq": pdq_hex(2)})), 10)
        assert follower.role == "leader" and follower.status()["replica"] == "leader"
    finally:
        a.close()
        b.close()
