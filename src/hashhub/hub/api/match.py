"""Match fingerprints, or an uploaded image hashed in memory, against the pool (members)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from hashhub.hub import match
from hashhub.hub.api.deps import Caller, HubDep, json_response
from hashhub.hub.errors import HubError, Invalid
from hashhub.hub.schemas import MatchIn

router = APIRouter(prefix="/api/v1/match", tags=["match"])


class TooLarge(HubError):
    status = 413


@router.post("", summary="Match up to 10,000 fingerprints (members)")
def match_fingerprints(body: MatchIn, hub: HubDep, caller: Caller) -> Response:
    return json_response(match.match(hub, caller, body.fingerprints, body.radius))


@router.post(
    "/media",
    summary="Hash an image in memory and match it (members)",
    description="Send the image bytes as the request body (`curl --data-binary @photo.jpg`). The image is "
    "held in memory only: it is hashed, matched and dropped, never written to disk.",
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
)
async def match_media(request: Request, hub: HubDep, caller: Caller) -> Response:
    caller.require("member")
    limit = hub.settings.max_upload_bytes
    if request.headers.get("content-type", "").startswith("multipart/"):
        raise Invalid("Send the image as the raw request body (curl --data-binary @file), not as a form.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"The upload is {declared} bytes; the limit is {limit}.")
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > limit:
            raise TooLarge(f"The upload is larger than the limit of {limit} bytes.")
    return json_response(await run_in_threadpool(match.match_media, hub, caller, bytes(data)))
