"""Liveness and pool statistics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hashhub.hub import feedback
from hashhub.hub.api.deps import Caller, HubDep, json_response

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness (no key needed)")
def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/api/v1/stats", summary="Counts the caller may see")
def stats(hub: HubDep, caller: Caller) -> Response:
    return json_response(feedback.stats(hub, caller))
