"""The agent's FastAPI application, built by a factory around an `AgentRuntime`.

Domain errors raised by the services are mapped to 4xx answers with a message here, in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hashhub.agent.api import api_router
from hashhub.agent.reports import ReportNotFound
from hashhub.agent.review import ReviewError, ReviewNotFound
from hashhub.agent.runtime import AgentRuntime


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def create_app(runtime: AgentRuntime, *, background_sync: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.load()
        if background_sync:
            runtime.start_background_sync()
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(title="hashhub agent", version="1", lifespan=lifespan)
    app.state.runtime = runtime
    app.include_router(api_router)
    from hashhub.ops.apps import install_agent  # limits, rate limits, metrics, JSON request logs

    install_agent(app, runtime)

    @app.get("/healthz", tags=["status"])
    def healthz() -> dict[str, Any]:
        # `replica`: leader (syncs for every replica on the store), follower or standalone
        return {"ok": True, "role": "agent", "items": len(runtime.matcher), "replica": runtime.role}

    @app.exception_handler(ReviewNotFound)
    async def _not_found(_r: Request, exc: ReviewNotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(ReportNotFound)
    async def _report_not_found(_r: Request, exc: ReportNotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(ReviewError)
    async def _conflict(_r: Request, exc: ReviewError) -> JSONResponse:
        return _error(409, str(exc))

    return app
