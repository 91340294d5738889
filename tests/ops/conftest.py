"""Ops fixtures: a hub and an agent built in-process, each with the operational layer installed."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hashhub.agent.app import create_app as create_agent_app
from hashhub.agent.runtime import AgentRuntime
from hashhub.agent.settings import make_settings
from hashhub.hub import orgs
from hashhub.hub.app import create_app as create_hub_app
from hashhub.hub.settings import HubSettings

with warnings.catch_warnings():  # see tests/agent/conftest.py: Starlette's httpx2 notice
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

AGENT_KEY = "ops-agent-key"
HubFactory = Callable[..., tuple[TestClient, dict[str, str]]]


@pytest.fixture
def hub_client(tmp_path: Path) -> Iterator[HubFactory]:
    """Build a hub with the given settings; returns a client and keys for admin/contrib/member/member2."""
    clients: list[TestClient] = []

    def build(**settings: Any) -> tuple[TestClient, dict[str, str]]:
        app = create_hub_app(HubSettings(db=f"sqlite:///{tmp_path / f'hub{len(clients)}.db'}", **settings))
        engine = app.state.hub.engine
        roles = {"admin": ["admin"], "contrib": ["contributor"], "member": ["member"], "member2": ["member"]}
        keys = {name: orgs.create_org(engine, name, r)["api_key"] for name, r in roles.items()}
        orgs.create_list(engine, "verified", read=["member", "member2"], write=["contrib"])
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client, keys

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def agent_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def build(**settings: Any) -> TestClient:
        db = str(tmp_path / f"agent{len(clients)}.db")
        overrides = {"db": db, "agent_key": AGENT_KEY, "sync_interval": 0}
        runtime = AgentRuntime(make_settings(**{**overrides, **settings}))
        client = TestClient(create_agent_app(runtime, background_sync=False))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
