"""The review queue over HTTP: list entries, confirm (drafts a report) or reject (feedback to hubs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hashhub.agent import review
from hashhub.agent.api.deps import Authorised, RowId, Runtime

router = APIRouter(prefix="/reviews", tags=["reviews"], dependencies=[Authorised])


class Confirm(BaseModel):
    reviewer: str | None = Field(default=None, max_length=200)
    viewed: bool = True


class Reject(BaseModel):
    reason: str = Field(min_length=1, max_length=review.MAX_REASON, examples=list(review.REJECT_REASONS))
    note: str = Field(default="", max_length=review.MAX_NOTE)
    reviewer: str | None = Field(default=None, max_length=200)


@router.get("")
def list_reviews(
    runtime: Runtime,
    status: str = Query("pending", pattern="^(pending|confirmed|rejected|all)$"),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    entries = review.list_reviews(runtime.store, None if status == "all" else status, limit)
    return {"reviews": entries}


@router.post("/{review_id}/confirm")
def confirm(review_id: RowId, body: Confirm, runtime: Runtime) -> dict[str, Any]:
    return review.confirm(runtime.store, review_id, reviewer=body.reviewer, viewed=body.viewed)


@router.post("/{review_id}/reject")
def reject(review_id: RowId, body: Reject, runtime: Runtime) -> dict[str, Any]:
    return review.reject(runtime.store, review_id, body.reason, note=body.note, reviewer=body.reviewer)
