"""The outermost middleware: times every request, counts it, logs it, and serves `GET /metrics`.

It sits outside the limits so refused requests (413, 429) are counted and logged too. `/metrics`
needs a bearer that `may_read_metrics` accepts (a configured metrics token or an operator's key).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hashhub.ops import logging as oplog
from hashhub.ops.metrics import CONTENT_TYPE, Metrics
from hashhub.ops.ratelimit import CALLER_SCOPE_KEY, Caller, bearer_token
from hashhub.ops.responses import send_json

METRICS_PATH = "/metrics"
UNMATCHED = "<unmatched>"  # 404s and mounted sub-apps: one label, not one series per path


class Observe:
    def __init__(
        self, app: ASGIApp, metrics: Metrics, may_read_metrics: Callable[[str | None], Awaitable[bool]]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.may_read_metrics = may_read_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == METRICS_PATH and scope["method"] == "GET":
            await self._serve_metrics(scope, send)
            return
        started = time.perf_counter()
        status = 500  # what the server sends if the app dies before answering

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.observe(route, scope["method"], status, seconds)
            caller: Caller | None = scope.get(CALLER_SCOPE_KEY)
            key_id = caller.bucket if caller and not caller.bucket.startswith("addr:") else None
            oplog.log_request(scope["method"], route, status, seconds, key_id)

    async def _serve_metrics(self, scope: Scope, send: Send) -> None:
        token = bearer_token(scope)
        if not token:
            await send_json(send, 401, "Metrics need 'Authorization: Bearer <metrics token or admin key>'.")
            return
        if not await self.may_read_metrics(token):
            await send_json(send, 403, "This key may not read metrics.")
            return
        body = self.metrics.render()
        headers = [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _route_template(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)  # FastAPI leaves the matched route here
    # Inside a mounted sub-app the route's path is relative; root_path holds the mount's prefix.
    return scope.get("root_path", "") + path if isinstance(path, str) else UNMATCHED
