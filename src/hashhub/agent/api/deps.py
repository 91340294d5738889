"""Dependencies shared by the agent's routers: the running agent and the caller's key."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status

from hashhub.agent.runtime import AgentRuntime


def get_runtime(request: Request) -> AgentRuntime:
    return request.app.state.runtime


def require_key(request: Request, runtime: Annotated[AgentRuntime, Depends(get_runtime)]) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Send the agent's key as 'Authorization: Bearer <key>' (see `hashhub agent serve` output).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(token.strip().encode(), runtime.settings.agent_key.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "The agent does not know this key.")


Runtime = Annotated[AgentRuntime, Depends(get_runtime)]
Authorised = Depends(require_key)
#: a stored row id; bounded so an out-of-range number is a 422, not a database overflow (500).
RowId = Annotated[int, Path(ge=1, le=2**62, description="an id as the agent gave it")]
