"""The agent's HTTP API: one router per resource, thin edges over the agent's services."""

from __future__ import annotations

from fastapi import APIRouter

from hashhub.agent.api import reports, reviews, scan, status

api_router = APIRouter(prefix="/api/v1")
for _module in (scan, reviews, reports, status):
    api_router.include_router(_module.router)

__all__ = ["api_router"]
