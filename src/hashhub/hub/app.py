"""`create_app(settings)`: the hub's FastAPI application (no globals; tests and the CLI build their own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError

from hashhub import signals
from hashhub.hub import compat, indexes
from hashhub.hub import match as match_service
from hashhub.hub.api import admin, health, items, match, sync
from hashhub.hub.api.deps import json_response
from hashhub.hub.api.fastlane import FastLane
from hashhub.hub.core import Hub
from hashhub.hub.errors import HubError
from hashhub.hub.settings import HubSettings
from hashhub.index import _parallel

_NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: HubSettings | None = None, hub: Hub | None = None) -> FastAPI:
    """An app over `hub` (or a hub opened from `settings`; its schema is upgraded on open)."""
    owned = hub is None
    hub = hub or Hub(settings or HubSettings())
    indexes.warm_up()  # before serving: the first request does not pay for setting up the adapters

    match_path = match_service.MatchPath(hub)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Load the pool before taking requests, so no caller pays for it (and a worker that says
        # it has started can match at once).
        await anyio.to_thread.run_sync(match_path.refresh)
        yield
        await anyio.to_thread.run_sync(match_path.close)  # writes the match audit records still pending
        if owned:
            hub.close()

    app = FastAPI(
        title="hashhub hub",
        version="1",
        lifespan=lifespan,
        telemetry=None if hub.settings.opentelemetry else _NO_TELEMETRY,
    )
    app.state.hub = hub
    app.state.match_path = match_path
    for module in (health, items, sync, match, admin):
        app.include_router(module.router)
    compat.include(app)  # NCMEC v2 and StopNCII v1 for the peers' own clients
    _error_handlers(app)
    # Innermost of the middlewares: the hottest route skips FastAPI's routing (see fastlane.py).
    app.add_middleware(
        FastLane, fastapi_app=app, lanes=[("POST", match.router.prefix, match.match_fingerprints)]
    )
    from hashhub.ops.apps import install_hub  # limits, rate limits, metrics, JSON request logs

    install_hub(app, hub)
    return app


def preload(app: FastAPI, fork: bool) -> None:
    """Load the match pool now, before serving (the lifespan's refresh then only catches up).

    With `fork`, the process is about to fork workers from itself (hub/prefork.py): it also lets go
    of what a worker must not inherit, its database connections and its background threads, which
    `reopen` gives each worker back."""
    hub: Hub = app.state.hub
    match_path: match_service.MatchPath = app.state.match_path
    match_path.refresh()
    _search_once(hub)
    hub.files.wait()  # a pool save it started must not be running (or half-done) at the fork
    if not fork:
        return
    match_path.head.close()  # SQLite's probe connection, or the follower thread elsewhere
    hub.engine.dispose()
    _parallel.shutdown()  # the index's kernel threads: no thread may run at the fork


def _search_once(hub: Hub) -> None:
    """One search in each of the pool's indexes: what a real search sets up on first use (the
    probe masks and per-radius plans the PDQ index caches, modules it imports lazily; warm_up's
    empty searches stop short of them) is made here, once, instead of in every worker on its
    first request, where each would hold a private copy."""
    pool = hub.pool
    for name in list(pool.indexes):
        signal = signals.get(name)
        if signal.examples:
            pool.near(name, [signal.examples[0]], signal.threshold)


def reopen(app: FastAPI) -> None:
    """In a freshly forked worker: database connections of its own (the pool's pages stay shared)."""
    hub: Hub = app.state.hub
    hub.engine.dispose(close=False)  # forget any inherited connection without closing the parent's
    app.state.match_path.reopen()


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def hub_error(_request: Request, exc: HubError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = json_response(exc.body(), exc.status)
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        # loc, msg and type: the ValidationError shape the OpenAPI document promises for 422.
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in errors[:50]
        ]
        return json_response({"error": f"{where}: {first.get('msg')}", "detail": detail}, 422)

    @app.exception_handler(OperationalError)
    async def busy(_request: Request, _exc: OperationalError) -> Response:
        return json_response({"error": "The database is busy or unavailable; retry shortly."}, 503)
