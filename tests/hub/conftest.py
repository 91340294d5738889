"""Hub fixtures: a real hub (SQLite file or a fresh PostgreSQL database) served by uvicorn on a
local port, a standard cast of organisations and lists, and small helpers to build items.

    world.client("iwf").post("/api/v1/items", json=...)

Organisations: `admin` (admin), `iwf` and `ncmec` (contributors), `plat` and `plat2` (members),
`outsider` (member without grants to `verified`), `both` (contributor + member). Lists: `verified`
(written by iwf, ncmec, both; read by plat, plat2, both) and `restricted` (written by ncmec, read by
outsider).
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from hashhub.hub import orgs
from hashhub.hub.app import create_app
from hashhub.hub.core import Hub
from hashhub.hub.settings import HubSettings

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh hub database URL: SQLite in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


def open_hub(url: str, **settings: Any) -> Hub:
    return Hub(HubSettings(db=url, key_cache_seconds=0, **settings))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(hub: Hub) -> Iterator[str]:
    """Serve `hub` with uvicorn on a free local port; yields the base URL."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(hub=hub), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test hub server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class World:
    hub: Hub
    url: str
    keys: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, org: str | None = None, key: str | None = None) -> httpx.Client:
        """An HTTP client acting as `org` (or with an explicit key, or with none)."""
        name = org or f"key:{key}"
        if name not in self._clients:
            secret = key if key is not None else (self.keys[org] if org else None)
            headers = {"Authorization": f"Bearer {secret}"} if secret else {}
            self._clients[name] = httpx.Client(base_url=self.url, headers=headers, timeout=60)
        return self._clients[name]

    def submit(
        self, org: str, rows: list[dict[str, Any]], list_name: str = "verified", **params: Any
    ) -> httpx.Response:
        return self.client(org).post("/api/v1/items", json={"list": list_name, "items": rows}, params=params)

    def submit_ok(self, org: str, rows: list[dict[str, Any]], list_name: str = "verified") -> list[str]:
        r = self.submit(org, rows, list_name)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    def feed(self, org: str = "plat", after: int = 0, **params: Any) -> dict[str, Any]:
        r = self.client(org).get("/api/v1/feed", params={"after": after, **params})
        assert r.status_code == 200, r.text
        return r.json()

    def close(self) -> None:
        for c in self._clients.values():
            c.close()


CAST = {
    "admin": ["admin"],
    "iwf": ["contributor"],
    "ncmec": ["contributor"],
    "plat": ["member"],
    "plat2": ["member"],
    "outsider": ["member"],
    "both": ["contributor", "member"],
}


def populate(hub: Hub) -> dict[str, str]:
    keys = {name: orgs.create_org(hub.engine, name, roles)["api_key"] for name, roles in CAST.items()}
    orgs.create_list(hub.engine, "verified", read=["plat", "plat2", "both"], write=["iwf", "ncmec", "both"])
    orgs.create_list(hub.engine, "restricted", read=["outsider"], write=["ncmec"])
    return keys


@pytest.fixture
def hub(db_url: str) -> Iterator[Hub]:
    h = open_hub(db_url, dispute_threshold=2)
    yield h
    h.close()


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    keys = populate(hub)
    with serving(hub) as url:
        w = World(hub, url, keys)
        yield w
        w.close()


def md5_of(n: int | str) -> str:
    return hashlib.md5(str(n).encode()).hexdigest()


def pdq_of(n: int | str) -> str:
    return hashlib.sha256(f"pdq:{n}".encode()).hexdigest()


def flip_bits(pdq: str, count: int) -> str:
    """`pdq` with its lowest `count` bits inverted (Hamming distance exactly `count`)."""
    return f"{int(pdq, 16) ^ ((1 << count) - 1):064x}"


def item(
    n: int | str, *, grade: str = "A1", reviewers: int = 1, external: bool = True, **fps: str
) -> dict[str, Any]:
    """A benign made-up item: tests pretend these fingerprints are listed."""
    row: dict[str, Any] = {
        "content_type": "image",
        "classification": {"scheme": "industry", "value": grade},
        "verification": {"reviewers": reviewers},
        "labels": {},
        "fingerprints": fps or {"md5": md5_of(n), "pdq": pdq_of(n)},
    }
    if external:
        row["external_id"] = f"ext-{n}"
    return row
