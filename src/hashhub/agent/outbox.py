"""What the agent owes its hubs: hits (a listed item matched here) and feedback (a reviewer's verdict).

Messages are written to the local outbox in the same transaction as the decision or verdict that
caused them, and sent at the start of each sync. A hub that is down keeps them queued (retried on the
next sync) instead of losing them; nothing else ever leaves the agent, and never any media.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hashhub.agent.hubclient import HubClient, HubError
from hashhub.agent.models import Outbox, utcnow
from hashhub.agent.store import HubState, Store

MAX_BATCH = 500


def queue(s: Session, hub_id: int, kind: str, item_id: str, payload: dict[str, Any]) -> None:
    s.add(Outbox(hub_id=hub_id, kind=kind, item_id=item_id, payload=payload))


def pending(store: Store, hub_id: int | None = None) -> list[dict[str, Any]]:
    query = select(Outbox).where(Outbox.sent_at.is_(None)).order_by(Outbox.id)
    if hub_id is not None:
        query = query.where(Outbox.hub_id == hub_id)
    with store.session() as s:
        return [
            {
                "id": o.id,
                "hub_id": o.hub_id,
                "kind": o.kind,
                "item": o.item_id,
                "payload": o.payload,
                "attempts": o.attempts,
                "last_error": o.last_error,
            }
            for o in s.scalars(query)
        ]


def _mark(store: Store, ids: list[int], error: str | None) -> None:
    with store.writing() as s:
        for row in s.scalars(select(Outbox).where(Outbox.id.in_(ids))):
            row.attempts += 1
            row.last_error = error
            if error is None:
                row.sent_at = utcnow()


def flush_outbox(store: Store, hub: HubState, client: HubClient, warnings: list[str]) -> int:
    """Send this hub's queued hits and feedback; returns how many were delivered.

    A failure leaves the message queued and adds a warning; it does not stop the sync.
    """
    sent = 0
    messages = pending(store, hub.id)
    hits = [m for m in messages if m["kind"] == "hit"]
    for start in range(0, len(hits), MAX_BATCH):
        chunk = hits[start : start + MAX_BATCH]
        ids = [m["id"] for m in chunk]
        try:
            client.hits([{"item": m["item"], **m["payload"]} for m in chunk])
        except HubError as exc:
            _mark(store, ids, str(exc))
            warnings.append(str(exc))
            break
        _mark(store, ids, None)
        sent += len(chunk)
    for message in (m for m in messages if m["kind"] == "feedback"):
        try:
            client.feedback(message["item"], message["payload"])
        except HubError as exc:
            _mark(store, [message["id"]], str(exc))
            warnings.append(str(exc))
            continue
        _mark(store, [message["id"]], None)
        sent += 1
    return sent
