"""What the agent follows and how its syncs went; `POST /sync` syncs now instead of waiting."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from hashhub.agent.api.deps import Authorised, Runtime

router = APIRouter(tags=["status"], dependencies=[Authorised])


@router.get("/status")
def status(runtime: Runtime) -> dict[str, Any]:
    return runtime.status()


@router.post("/sync")
async def sync_now(runtime: Runtime) -> dict[str, Any]:
    results = await run_in_threadpool(runtime.sync_once)
    return {"results": [r.as_dict() for r in results], "items": len(runtime.scanner.matcher)}
