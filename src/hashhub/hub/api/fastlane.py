"""A fast lane for the hottest route: `POST /api/v1/match` served without FastAPI's router.

Profiled with one million items, FastAPI's routing, dependency solving and exception middleware
cost more per request than the match itself. The lane sits inside the ops middlewares (so rate
limits, the body limit, metrics and the request log apply as before) and hands exactly the routes
it knows to their endpoint, which takes the bare `Request`. The same endpoint stays registered with
FastAPI, so the OpenAPI document and every other path are unchanged. Errors are turned into answers
by the app's own exception handlers, so a refused request reads the same on either path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class FastLane:
    """`lanes`: (method, path, endpoint) of each route to serve here; the endpoint is the one
    registered with FastAPI for that method and path."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, lanes: list[tuple[str, str, Endpoint]]) -> None:
        self.app = app
        self._fastapi = fastapi_app
        self._routes: dict[tuple[str, str], tuple[Route, Endpoint]] = {
            (method, path): (Route(path, endpoint, methods=[method]), endpoint)
            for method, path, endpoint in lanes
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = (
            self._routes.get((scope.get("method", ""), scope.get("path", "")))
            if scope["type"] == "http"
            else None
        )
        if lane is None:
            await self.app(scope, receive, send)
            return
        route, endpoint = lane
        scope["route"] = route  # the request log and metrics label it by its path template, as before
        scope["app"] = self._fastapi
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Callable[[Request, Exception], Awaitable[Response]] | None:
        for cls in type(exc).__mro__:
            handler = self._fastapi.exception_handlers.get(cls)
            if handler is not None:
                return handler
        return None
