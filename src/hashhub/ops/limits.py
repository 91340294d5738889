"""Request body limit: a pure ASGI middleware that counts the bytes actually streamed.

A Content-Length over the limit is refused before anything is read; a body sent without one
(chunked) is cut off as soon as the running count passes the limit, so a client can never make the
server buffer more than `max_bytes`. A body cannot outgrow its Content-Length: the HTTP server
frames the request by it (bytes beyond it are the next request).
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hashhub.ops.responses import send_json


class BodyTooLarge(HTTPException):
    """Raised from `receive`; FastAPI re-raises HTTPExceptions met while reading a body, so it
    reaches the exception handlers as a 413 instead of a generic 400 "error parsing the body"."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body is larger than this server accepts ({max_bytes} bytes).")


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await send_json(send, 413, BodyTooLarge(self.max_bytes).detail)
                return
            # The server reads exactly Content-Length bytes as this request's body (any more start
            # the next request), so a declared length within the limit needs no counting.
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as exc:  # read outside FastAPI's handlers (e.g. by a raw ASGI mount)
            if started:
                raise
            await send_json(send, 413, exc.detail)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
