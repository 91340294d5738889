"""Dependencies shared by the routers: the open hub, the calling organisation, JSON responses."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from hashhub.hub.auth import Principal
from hashhub.hub.core import Hub
from hashhub.ops.ratelimit import CALLER_SCOPE_KEY, bearer_token

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hh_...`")


def get_hub(request: Request) -> Hub:
    return request.app.state.hub


def get_principal(
    hub: Annotated[Hub, Depends(get_hub)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return hub.keys.verify(credentials.credentials if credentials else None)


async def caller_of(request: Request, hub: Hub) -> Principal:
    """The verified caller, for hand-written hot paths: the one the rate limit identified for this
    request when there is one, else a key verified within the cache time is a dict lookup on the
    event loop; only a miss (a database read) goes to a thread."""
    identified = request.scope.get(CALLER_SCOPE_KEY)
    if identified is not None and isinstance(identified.subject, Principal):
        return identified.subject
    token = bearer_token(request.scope)
    principal = hub.keys.cached(token) if token else None
    return principal or await run_in_threadpool(hub.keys.verify, token)


HubDep = Annotated[Hub, Depends(get_hub)]
Caller = Annotated[Principal, Depends(get_principal)]
ItemId = Annotated[int, Path(ge=1, le=2**62, description="an item id as the hub gave it")]


class JsonResponse(Response):
    """An orjson-encoded body with its two headers built directly (Starlette's `init_headers`
    inspects media type and charset on every response; this is answered on the hottest route)."""

    media_type = "application/json"

    def __init__(self, data: Any, status: int = 200) -> None:
        self.status_code = status
        self.background = None
        self.body = orjson.dumps(data)
        self.raw_headers = [
            (b"content-length", str(len(self.body)).encode()),
            (b"content-type", b"application/json"),
        ]


def json_response(data: Any, status: int = 200) -> Response:
    return JsonResponse(data, status)
