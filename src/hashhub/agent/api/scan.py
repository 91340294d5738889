"""`POST /api/v1/scan`: one file (multipart field `file`, or the raw body) or fingerprints computed
elsewhere (JSON `{"fingerprints": {"pdq": ..., "md5": ...}}`) in; hashes, matches and action out."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from hashhub.agent.api.deps import Authorised, Runtime
from hashhub.agent.matcher import parse_fingerprints
from hashhub.signals import SignalError
from hashhub.uploads import UploadError, file_of, read_body

router = APIRouter(tags=["scan"], dependencies=[Authorised])

_OPENAPI_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "fingerprints": {"type": "object", "additionalProperties": {"type": "string"}},
                        "file": {"type": "string"},
                    },
                    "required": ["fingerprints"],
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
        "required": True,
    }
}


def _fingerprints(body: bytes) -> tuple[dict[str, str], str | None]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UploadError(f"The JSON body could not be parsed: {exc}", 400) from None
    raw = payload.get("fingerprints") if isinstance(payload, dict) else None
    if not isinstance(raw, dict):
        raise UploadError('A JSON scan needs {"fingerprints": {"<signal>": "<value>", ...}}.', 422)
    try:
        hashes = parse_fingerprints(raw)
    except SignalError as exc:
        raise UploadError(f"Bad fingerprint: {exc}", 422) from None
    name = payload.get("file")
    return hashes, name if isinstance(name, str) else None


@router.post("/scan", openapi_extra=_OPENAPI_BODY)
async def scan(request: Request, runtime: Runtime) -> dict[str, Any]:
    """Scan one upload in memory (never written to disk) and answer with the action to take."""
    started = time.perf_counter()
    content_type = request.headers.get("content-type", "")
    try:
        body = await read_body(request, runtime.settings.max_upload_bytes)
        if content_type.startswith("application/json"):
            hashes, name = _fingerprints(body)
            result = await run_in_threadpool(runtime.scanner.scan_fingerprints, hashes, name)
        else:
            data, name = file_of(body, content_type)
            name = name or request.query_params.get("file")
            if not data:
                raise UploadError("The upload is empty.", 422)
            result = await run_in_threadpool(runtime.scanner.scan_bytes, data, name)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    out = result.as_dict()
    out["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return out
