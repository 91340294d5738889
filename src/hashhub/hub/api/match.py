"""Match fingerprints, or an uploaded image hashed in memory, against the pool (members)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from hashhub.hub import match
from hashhub.hub.api.deps import Caller, HubDep, caller_of, json_response
from hashhub.hub.errors import HubError, Invalid
from hashhub.hub.schemas import MatchIn, MatchOut
from hashhub.uploads import UploadError, file_of, read_body

router = APIRouter(prefix="/api/v1/match", tags=["match"])


class TooLarge(HubError):
    status = 413


_BINARY = {"type": "string", "format": "binary"}
_UPLOAD_ERRORS: dict[int, type[HubError]] = {413: TooLarge, 422: Invalid}


_MATCH_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": MatchIn.model_json_schema()}},
    },
    "security": [{"HTTPBearer": []}],
}


@router.post(
    "",
    summary="Match up to 10,000 fingerprints (members)",
    response_model=MatchOut,
    responses={422: {"description": "Invalid fingerprints or body (`rejected` lists the bad queries)"}},
    openapi_extra=_MATCH_DOC,
)
async def match_fingerprints(request: Request) -> Response:
    # The hot path, written by hand: the body is parsed with orjson (pydantic only to explain a bad
    # body), a key verified in the last seconds is a dict lookup, and a small query is answered on
    # the event loop straight from memory; anything that may touch the database goes to a thread.
    path: match.MatchPath = request.app.state.match_path
    principal = await caller_of(request, path.hub)
    principal.require("member")
    fingerprints, radius = match_body(await read_all(request.receive))
    answer = match.match_now(path, principal, fingerprints, radius)
    if answer is None:
        answer = await run_in_threadpool(match.match, path.hub, principal, fingerprints, radius, path)
    return json_response(answer)


async def read_all(receive: Receive) -> bytes:
    """The whole request body straight from `receive` (Starlette's `Request.body` drives an async
    generator over the same messages, which costs more than the usual one-message body)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        body = message.get("body", b"")
        if not message.get("more_body", False):
            return b"".join((*chunks, body)) if chunks else body
        chunks.append(body)


def match_body(raw: bytes) -> tuple[Any, dict[str, float] | None]:
    """`fingerprints` and `radius` of a match body; a body that is not a MatchIn answers 422 with
    the same messages FastAPI would give."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([error]) from None
    if isinstance(data, dict) and isinstance(data.get("fingerprints"), list) and data.get("radius") is None:
        return data["fingerprints"], None
    try:
        body = MatchIn.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    return body.fingerprints, body.radius


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
    path = request.app.state.match_path
    answer = await run_in_threadpool(match.match_media, hub, caller, data, options, path)
    return json_response(answer)
