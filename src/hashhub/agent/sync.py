"""Following hubs: bootstrap from the snapshot once, then the feed from the saved cursor.

Reads like a resumable iterator: `feed_pages` yields (changes, checkpoint) pairs and `sync_hub`
commits each page with its checkpoint in one local transaction, so a crash or a network error at any
point resumes from the last committed page without losing or repeating a change. A failure is
recorded on the hub's row (`last_error`) and returned in the result, never raised to the caller, so
one bad hub does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from hashhub.agent.hubclient import HubClient, HubError, HubProtocolError
from hashhub.agent.items import ItemFormatError, parse_item
from hashhub.agent.outbox import flush_outbox
from hashhub.agent.store import Change, HubState, Store

log = logging.getLogger(__name__)

FEED_PAGE = 1000
SNAPSHOT_BATCH = 2000

#: builds the client for a hub; tests hand in one over `httpx.MockTransport`.
ClientFactory = Callable[[HubState], HubClient]


def default_client(hub: HubState) -> HubClient:
    return HubClient(hub.url, hub.api_key)


@dataclass
class SyncResult:
    hub: str
    cursor_before: int
    cursor: int = 0
    bootstrapped: bool = False
    upserts: int = 0
    deletes: int = 0
    dropped_fingerprints: int = 0
    sent: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "hub": self.hub,
            "ok": self.ok,
            "cursor_before": self.cursor_before,
            "cursor": self.cursor,
            "bootstrapped": self.bootstrapped,
            "upserts": self.upserts,
            "deletes": self.deletes,
            "dropped_fingerprints": self.dropped_fingerprints,
            "sent": self.sent,
            "error": self.error,
        }


def parse_change(raw: object, after: int) -> tuple[int, Change] | None:
    """(cursor, change) for one feed entry; None for an entry at or before `after` (a replay)."""
    if not isinstance(raw, dict):
        raise HubProtocolError(f"a feed change must be an object, got {type(raw).__name__}")
    cursor = raw.get("cursor")
    if not isinstance(cursor, int) or isinstance(cursor, bool):
        raise HubProtocolError(f"a feed change has no integer 'cursor': {str(raw)[:120]}")
    if cursor <= after:
        return None
    op = raw.get("op")
    if op == "upsert":
        item = parse_item(raw.get("item"))
        return cursor, Change(item.item_id, item)
    if op == "delete":
        item_id = raw.get("id")
        if item_id is None and isinstance(raw.get("item"), dict):
            item_id = raw["item"].get("id")
        if item_id is None or str(item_id) == "":
            raise HubProtocolError(f"a delete change has no 'id': {str(raw)[:120]}")
        return cursor, Change(str(item_id), None)
    raise HubProtocolError(f"unknown feed op {op!r} at cursor {cursor}")


def feed_pages(client: HubClient, after: int, limit: int = FEED_PAGE) -> Iterator[tuple[list[Change], int]]:
    """Yield (changes, checkpoint) pages after `after` until the hub has no more."""
    while True:
        page = client.feed(after, limit)
        changes: list[Change] = []
        last = after
        for raw in page.changes:
            parsed = parse_change(raw, after)
            if parsed is None:
                continue
            cursor, change = parsed
            if cursor <= last:
                raise HubProtocolError(f"the feed went backwards (cursor {cursor} after {last})")
            last = cursor
            changes.append(change)
        checkpoint = max(last, page.next)
        yield changes, checkpoint
        if not page.has_more or checkpoint <= after:
            return
        after = checkpoint


def _bootstrap(store: Store, hub: HubState, client: HubClient, result: SyncResult) -> int:
    cursor, raw_items = client.snapshot()
    seen: set[str] = set()
    batch: list[Change] = []
    for raw in raw_items:
        item = parse_item(raw)
        result.dropped_fingerprints += len(item.dropped)
        if item.matches:  # a withdrawn item in a snapshot is not kept (delete_missing drops it)
            seen.add(item.item_id)
            batch.append(Change(item.item_id, item))
        if len(batch) >= SNAPSHOT_BATCH:
            result.upserts += store.apply_batch(hub.id, batch)
            batch = []
    if batch:
        result.upserts += store.apply_batch(hub.id, batch)
    # Only a complete snapshot sets the cursor; an interrupted one is simply taken again.
    result.deletes += store.delete_missing(hub.id, seen, cursor)
    result.bootstrapped = True
    return cursor


def sync_hub(store: Store, hub: HubState, client: HubClient, *, page_size: int = FEED_PAGE) -> SyncResult:
    """Bring one hub's items up to date; errors end up in the result and on the hub's row."""
    result = SyncResult(hub=hub.url, cursor_before=hub.cursor, cursor=hub.cursor)
    try:
        result.sent = flush_outbox(store, hub, client, result.warnings)
        cursor = hub.cursor
        if not hub.bootstrapped:
            cursor = _bootstrap(store, hub, client, result)
        for changes, checkpoint in feed_pages(client, cursor, page_size):
            result.dropped_fingerprints += sum(len(c.item.dropped) for c in changes if c.item)
            store.apply_batch(hub.id, changes, checkpoint)
            result.upserts += sum(1 for c in changes if c.item is not None and c.item.matches)
            result.deletes += sum(1 for c in changes if c.item is None or not c.item.matches)
            cursor = checkpoint
        result.cursor = store.hub(hub.url).cursor
        store.record_success(hub.id)
    except (HubError, ItemFormatError, httpx.HTTPError) as exc:
        result.error = str(exc) if isinstance(exc, HubError) else f"The hub at {hub.url} sent bad data: {exc}"
        result.cursor = store.hub(hub.url).cursor
        store.record_error(hub.id, result.error)
        log.warning("sync of %s failed: %s", hub.url, result.error)
    return result


def sync_all(store: Store, make_client: ClientFactory = default_client) -> list[SyncResult]:
    """Sync every followed hub in turn, each with its own cursor and key."""
    results = []
    for hub in store.hubs():
        with make_client(hub) as client:
            results.append(sync_hub(store, hub, client))
    return results
