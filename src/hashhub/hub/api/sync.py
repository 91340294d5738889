"""What members follow: the feed of changes and the snapshot that bootstraps it."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from hashhub.hub import feed, snapshot
from hashhub.hub.api.deps import Caller, HubDep

router = APIRouter(prefix="/api/v1", tags=["sync"])


@router.get("/feed", summary="Changes after a cursor, in order (members)")
def read_feed(
    hub: HubDep,
    caller: Caller,
    after: int = Query(0, ge=0, le=2**62),
    limit: int = Query(1000, ge=1),
    lists: list[str] | None = Query(None, alias="list", description="only these lists (repeatable)"),
    signal: list[str] | None = Query(None, description="only items with one of these signal types"),
    grading: list[str] | None = Query(None, description="'scheme:value' or 'value' (repeatable)"),
    contributor: list[str] | None = Query(None, description="only items of these contributors"),
) -> Response:
    page = feed.read(hub, caller, after, limit, feed.FeedFilter(lists, signal, grading, contributor))
    return Response(page, media_type="application/json")


@router.get(
    "/snapshot",
    summary="Every live item as NDJSON; first line {'cursor': C} (members)",
    responses={200: {"content": {"application/x-ndjson": {}}}},  # documents what the stream really is
)
def read_snapshot(
    request: Request,
    hub: HubDep,
    caller: Caller,
    lists: list[str] | None = Query(None, alias="list", description="only these lists (repeatable)"),
) -> StreamingResponse:
    gzip = "gzip" in request.headers.get("accept-encoding", "").lower()
    chunks = snapshot.open_stream(hub, caller, lists, gzip=gzip)
    headers = {"Content-Encoding": "gzip"} if gzip else {}
    return StreamingResponse(chunks, media_type="application/x-ndjson", headers=headers)
