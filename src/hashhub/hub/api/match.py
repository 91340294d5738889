"""Match fingerprints, or an uploaded image hashed in memory, against the pool (members)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from hashhub.hub import match
from hashhub.hub.api.deps import Caller, HubDep, json_response
from hashhub.hub.errors import HubError, Invalid
from hashhub.hub.schemas import MatchIn
from hashhub.uploads import UploadError, file_of, read_body

router = APIRouter(prefix="/api/v1/match", tags=["match"])


class TooLarge(HubError):
    status = 413


_BINARY = {"type": "string", "format": "binary"}
_UPLOAD_ERRORS: dict[int, type[HubError]] = {413: TooLarge, 422: Invalid}


@router.post("", summary="Match up to 10,000 fingerprints (members)")
def match_fingerprints(body: MatchIn, hub: HubDep, caller: Caller) -> Response:
    return json_response(match.match(hub, caller, body.fingerprints, body.radius))


@router.post(
    "/media",
    summary="Hash an image or video in memory and match it (members)",
    description="Send the image or video bytes as the request body (`curl --data-binary @photo.jpg`) or "
    "as the multipart field `file` (`curl -F file=@clip.mp4`). The upload is held in memory only: it is "
    "hashed (PDQ for images, vPDQ for videos), matched and dropped, never written to disk. Images are "
    "also matched through query variants (border/letterbox trimmed, mirrored, turned, crop-padded); each "
    'match says which one found it (`"variant": "plain"` for the untouched image).',
    openapi_extra={
        "requestBody": {
            "content": {
                "application/octet-stream": {"schema": _BINARY},
                "multipart/form-data": {"schema": {"type": "object", "properties": {"file": _BINARY}}},
            }
        }
    },
)
async def match_media(
    request: Request,
    hub: HubDep,
    caller: Caller,
    variants: Annotated[
        str | None,
        Query(
            description="Query variants for images, comma-separated names or groups (all, none, borders, "
            "mirrors, rotations, dihedral, crops, or e.g. trimmed,mirror). Default: all."
        ),
    ] = None,
) -> Response:
    caller.require("member")
    options = match.variant_options(variants)
    try:
        body = await read_body(request, hub.settings.max_upload_bytes)
        data, _ = file_of(body, request.headers.get("content-type", ""))
    except UploadError as exc:
        raise _UPLOAD_ERRORS.get(exc.status, HubError)(str(exc)) from None
    return json_response(await run_in_threadpool(match.match_media, hub, caller, data, options))
