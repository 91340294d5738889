"""A JSON error answer sent straight over ASGI, for middlewares that refuse before the app runs."""

from __future__ import annotations

import orjson
from starlette.types import Send


async def send_json(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = orjson.dumps({"error": message, "detail": message})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
