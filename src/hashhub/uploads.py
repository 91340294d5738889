"""Reading an upload into memory: multipart (field `file`) or a raw body, with a size limit.

Shared by the hub (`/api/v1/match/media`), the agent (`/api/v1/scan`) and the web UI; neither side
imports the other. Starlette's UploadFile spools anything over 1 MB to a temporary file; uploaded
media must never touch disk, so the multipart body is parsed here, in memory, with python-multipart.
"""

from __future__ import annotations

from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

FILE_FIELD = "file"


class UploadError(ValueError):
    """The request body is not a usable upload; the message says why (answered as 400/413/422)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Part:
    name: str | None = None
    filename: str | None = None
    data: bytearray | None = None


def read_multipart(body: bytes, content_type: str) -> tuple[bytes, str | None]:
    """(file bytes, client's file name) of the `file` field of a multipart/form-data body."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadError("The multipart body has no boundary in its Content-Type header.")
    parts: list[Part] = []
    header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}
    headers: dict[bytes, bytes] = {}

    def on_part_begin() -> None:
        parts.append(Part(data=bytearray()))
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        headers[bytes(header["field"]).lower()] = bytes(header["value"])
        header["field"], header["value"] = bytearray(), bytearray()

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name, filename = disposition.get(b"name"), disposition.get(b"filename")
        parts[-1].name = name.decode("utf-8", "replace") if name else None
        parts[-1].filename = filename.decode("utf-8", "replace") if filename is not None else None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data += data[start:end]  # type: ignore[operator]

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart raises several error types for malformed bodies
        raise UploadError(f"The multipart body could not be parsed: {exc}") from None
    for part in parts:
        if part.name == FILE_FIELD:
            return bytes(part.data or b""), part.filename
    names = sorted({p.name for p in parts if p.name})
    raise UploadError(f"The multipart body has no field named {FILE_FIELD!r} (fields: {names}).", 422)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole request body, refused (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadError(f"The upload is {int(declared)} bytes; at most {limit} are accepted.", 413)
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise UploadError(f"The upload is over {limit} bytes, the most accepted.", 413)
    return bytes(chunks)


def file_of(body: bytes, content_type: str) -> tuple[bytes, str | None]:
    """(file bytes, client's file name or None) of a body that is multipart (field `file`) or raw."""
    if content_type.startswith("multipart/form-data"):
        return read_multipart(body, content_type)
    return body, None
