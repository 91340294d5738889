"""How the hub and the agent plug into `ops.install`: who the caller is, and what to measure."""

from __future__ import annotations

import hmac
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import FastAPI

from hashhub.ops import Hooks, install
from hashhub.ops.ratelimit import Caller

if TYPE_CHECKING:
    from hashhub.agent.runtime import AgentRuntime
    from hashhub.hub.auth import Principal
    from hashhub.hub.core import Hub


def install_hub(app: FastAPI, hub: Hub) -> None:
    install(app, hub.settings, hub_hooks(hub), "hub")


def install_agent(app: FastAPI, runtime: AgentRuntime) -> None:
    install(app, runtime.settings, agent_hooks(runtime), "agent")


def hub_hooks(hub: Hub) -> Hooks:
    from hashhub.hub.errors import HubError

    callers: dict[str, Caller] = {}  # key id -> the Caller of its current cached Principal

    def caller(principal: Principal) -> Caller:
        # One Caller per cached principal, not one per request (the key cache hands out the same
        # Principal object until it verifies the key again).
        known = callers.get(principal.key_id)
        if known is None or known.subject is not principal:
            known = callers[principal.key_id] = Caller(
                principal.key_id, principal.roles & principal.scopes, principal
            )
        return known

    def verify(token: str) -> Caller | None:
        try:
            principal = hub.keys.verify(token)  # cached for key_cache_seconds after the first call
        except HubError:
            return None
        return caller(principal)

    async def identify(token: str) -> Caller | None:
        # A key verified within the cache time is a dict lookup; a miss reads the database, which
        # must stay off the event loop.
        principal = hub.keys.cached(token)
        if principal is not None:
            return caller(principal)
        return await anyio.to_thread.run_sync(verify, token)

    def index_size() -> float:
        # The pool keeps one entry per live indexed item; it has no public counter of its own.
        return float(len(hub.pool))

    return Hooks(identify=identify, index_size=index_size)


def agent_hooks(runtime: AgentRuntime) -> Hooks:
    agent = Caller("agent", frozenset({"agent"}))  # the agent has one key: one bucket

    async def identify(token: str) -> Caller | None:
        return agent if hmac.compare_digest(token.encode(), runtime.settings.agent_key.encode()) else None

    def index_size() -> float:
        return float(len(runtime.scanner.matcher))

    def sync_lag() -> float:
        return sync_lag_seconds([h.last_sync_at for h in runtime.store.hubs()], time.time())

    return Hooks(identify, index_size, sync_lag, metrics_roles=frozenset({"agent"}))


def sync_lag_seconds(last_syncs: list[datetime | None], now: float) -> float:
    """Age of the stalest successful sync; -1 when some hub was never synced, 0 with no hubs."""
    if any(t is None for t in last_syncs):
        return -1.0
    stamps = [(t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() for t in last_syncs if t]
    return max(0.0, now - min(stamps)) if stamps else 0.0
