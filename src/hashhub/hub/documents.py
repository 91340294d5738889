"""The item document: what the feed, snapshot and item routes show for one item (JSON bytes)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

#: fields the hub sets; everything else in a document comes from the contributor's submission.
SERVER_FIELDS = ("status", "created_at", "updated_at")


@lru_cache(maxsize=256)  # a batch renders thousands of documents with the same timestamps
def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def render(fields: dict[str, Any], *, status: str, created_at: float, updated_at: float) -> bytes:
    """`fields` holds the contributor-given part (see `ingest.Row.fields`); ids are public strings."""
    return orjson.dumps(
        {**fields, "status": status, "created_at": iso(created_at), "updated_at": iso(updated_at)}
    )


def head(list_name: str, contributor: str) -> bytes:
    """The `"list"` and `"contributor"` members of every document of a batch, rendered once."""
    return orjson.dumps({"list": list_name, "contributor": contributor})[1:-1]


def tail(status: str, created_at: float, updated_at: float) -> bytes:
    """The hub-set members that close a document, rendered once for all rows that share them
    (every new item of a batch has the same status and times)."""
    return b'"status":"%s","created_at":"%s","updated_at":"%s"}' % (
        status.encode(),
        iso(created_at).encode(),  # type: ignore[union-attr]
        iso(updated_at).encode(),  # type: ignore[union-attr]
    )


def join(item_id: int, head: bytes, body: bytes, tail: bytes) -> bytes:
    """A document from its parts: the same bytes as `render` of `{"id": str(item_id), **head,
    **body}` with `tail`'s fields. `head` is rendered once per batch, `body` when the row was parsed
    (off the writer's path) and `tail` once per distinct status and times: joining bytes is all that
    is left to do per item under the feed cursor's lock."""
    return b'{"id":"%d",%s,%s,%s' % (item_id, head, body, tail)


def assemble(
    item_id: int, head: bytes, body: bytes, status: str, created_at: float, updated_at: float
) -> bytes:
    """`join` with the tail rendered for this one item."""
    return join(item_id, head, body, tail(status, created_at, updated_at))


def with_status(doc: bytes, status: str, updated_at: float) -> bytes:
    body = orjson.loads(doc)
    body["status"] = status
    body["updated_at"] = iso(updated_at)
    return orjson.dumps(body)
