"""`create_app(settings)`: the hub's FastAPI application (no globals; tests and the CLI build their own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError

from hashhub.hub import compat, indexes
from hashhub.hub import match as match_service
from hashhub.hub.api import admin, health, items, match, sync
from hashhub.hub.api.deps import json_response
from hashhub.hub.api.fastlane import FastLane
from hashhub.hub.core import Hub
from hashhub.hub.errors import HubError
from hashhub.hub.settings import HubSettings


def create_app(settings: HubSettings | None = None, hub: Hub | None = None) -> FastAPI:
    """An app over `hub` (or a hub opened from `settings`; its schema is upgraded on open)."""
    owned = hub is None
    hub = hub or Hub(settings or HubSettings())
    indexes.warm_up()  # before serving: request threads must not compile kernels concurrently

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

    app = FastAPI(title="hashhub hub", version="1", lifespan=lifespan)
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
