"""Agent test fixtures: a store on SQLite (and PostgreSQL where the contract suite asks for it), and a
small in-memory hub speaking the feed/snapshot contract over `httpx.MockTransport` for sync unit tests.
End-to-end tests use a real `hashhub hub serve` process instead (test_e2e.py)."""

from __future__ import annotations

import functools
import gzip
import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import typer

from hashhub.agent.db import open_engine
from hashhub.agent.hubclient import HubClient
from hashhub.agent.store import Store

with warnings.catch_warnings():
    # Starlette now asks for `httpx2` under its TestClient; it still works with httpx, which the
    # project uses. Silence that one import-time notice here rather than add a second HTTP client.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient as TestClient

HUB_URL = "http://hub.test"


@functools.cache
def cli_app() -> typer.Typer:
    """The `hashhub` typer app with every command group registered (once per test session)."""
    from hashhub.cli import _register, app

    _register()
    return app


KEY = "member-key"


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    engine = open_engine(str(tmp_path / "agent.db"))
    yield Store(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request, tmp_path) -> Iterator[Store]:
    """The same store contract on SQLite and on a real PostgreSQL server."""
    url = str(tmp_path / "agent.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = open_engine(url)
    yield Store(engine)
    engine.dispose()


def pdq_hex(seed: int) -> str:
    """A deterministic, well-spread PDQ-shaped value (64 hex) for seed."""
    import hashlib

    return hashlib.sha256(f"pdq-{seed}".encode()).hexdigest()


def make_item(n: int, **over: Any) -> dict[str, Any]:
    item = {
        "id": f"item-{n}",
        "list": "verified",
        "contributor": "hotline-a",
        "external_id": f"ext-{n}",
        "content_type": "image",
        "classification": {"scheme": "industry", "value": "A1"},
        "verification": {"reviewers": 2},
        "labels": {},
        "fingerprints": {"pdq": pdq_hex(n), "md5": f"{n:032x}"},
        "status": "active",
    }
    item.update(over)
    return item


@dataclass
class FakeHub:
    """A hub's change log in memory, served over MockTransport with the contract's shapes."""

    key: str = KEY
    log: list[dict[str, Any]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    feedback: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    hits: list[tuple[str, int]] = field(default_factory=list)
    #: set to make the next request(s) fail: a callable(request) -> Response | None
    fault: Callable[[httpx.Request], httpx.Response | None] | None = None

    @property
    def cursor(self) -> int:
        return len(self.log)

    def upsert(self, item: dict[str, Any]) -> None:
        self.log.append({"cursor": self.cursor + 1, "op": "upsert", "item": item})

    def delete(self, item_id: str) -> None:
        self.log.append({"cursor": self.cursor + 1, "op": "delete", "id": item_id})

    def current(self) -> dict[str, dict[str, Any]]:
        items: dict[str, dict[str, Any]] = {}
        for change in self.log:
            if change["op"] == "upsert":
                items[change["item"]["id"]] = change["item"]
            else:
                items.pop(change["id"], None)
        return items

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fault is not None:
            response = self.fault(request)
            if response is not None:
                return response
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return httpx.Response(401, json={"detail": "unknown key"})
        path = request.url.path
        if path == "/api/v1/snapshot":
            lines = [json.dumps({"cursor": self.cursor})] + [json.dumps(i) for i in self.current().values()]
            body = ("\n".join(lines) + "\n").encode()
            return httpx.Response(200, content=gzip.compress(body), headers={"content-encoding": "gzip"})
        if path == "/api/v1/feed":
            after = int(request.url.params.get("after", 0))
            limit = int(request.url.params.get("limit", 1000))
            changes = [c for c in self.log if c["cursor"] > after][:limit]
            nxt = changes[-1]["cursor"] if changes else after
            return httpx.Response(200, json={"changes": changes, "next": nxt, "has_more": nxt < self.cursor})
        if path.startswith("/api/v1/items/") and path.endswith("/hits"):
            self.hits.append((path.split("/")[4], json.loads(request.content)["count"]))
            return httpx.Response(200, json={"item": path.split("/")[4], "recorded": 1})
        if path.startswith("/api/v1/items/") and path.endswith("/feedback"):
            self.feedback.append((path.split("/")[4], json.loads(request.content)))
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(404, json={"detail": "not found"})

    def client(self, url: str = HUB_URL, key: str | None = None) -> HubClient:
        return HubClient(url, key or self.key, transport=httpx.MockTransport(self.handler))


@pytest.fixture
def fake_hub() -> FakeHub:
    return FakeHub()


def corpus_rows(corpus, count: int, offset: int = 0) -> list[dict[str, str]]:
    """Reference rows (file, md5, sha1, sha256, pdq, pdq_quality) of corpus photos, in file order."""
    import csv

    with open(corpus / "photos.reference.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["pdq"] and int(r["pdq_quality"]) >= 80]
    return rows[offset : offset + count]


def item_from_row(row: dict[str, str], n: int, **over: Any) -> dict[str, Any]:
    """A hub item that lists one corpus photo (a benign stand-in) by its md5 and pdq."""
    return make_item(n, external_id=row["file"], fingerprints={"md5": row["md5"], "pdq": row["pdq"]}, **over)


@pytest.fixture
def runtime(tmp_path, fake_hub):
    """An AgentRuntime on a temporary SQLite store that follows `fake_hub` (over MockTransport)."""
    from hashhub.agent.runtime import AgentRuntime
    from hashhub.agent.settings import make_settings

    settings = make_settings(db=str(tmp_path / "agent.db"), agent_key="test-agent-key", sync_interval=0)
    rt = AgentRuntime(settings, make_client=lambda h: fake_hub.client(h.url))
    rt.store.follow(HUB_URL, KEY)
    yield rt
    rt.close()
