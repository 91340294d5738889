"""What the agent owes its hubs: hits (a listed item matched here) and feedback (a reviewer's verdict).

Messages are written to the local outbox in the same transaction as the decision or verdict that
caused them, and sent at the start of each sync. A hub that is down keeps them queued (retried on the
next sync) instead of losing them; nothing else ever leaves the agent, and never any media.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hashhub.agent.hubclient import HubClient, HubError, HubProtocolError
from hashhub.agent.models import Outbox, utcnow
from hashhub.agent.store import HubState, Store


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


def _mark(store: Store, ids: list[int], error: str | None, *, done: bool) -> None:
    """Count an attempt; `done` closes the message (delivered, or refused for good by the hub)."""
    with store.writing() as s:
        for row in s.scalars(select(Outbox).where(Outbox.id.in_(ids))):
            row.attempts += 1
            row.last_error = error
            if done:
                row.sent_at = utcnow()


def _send(store: Store, ids: list[int], send: Callable[[], object], warnings: list[str]) -> bool:
    """Deliver one message; False when the hub is unreachable or failing (stop, retry next sync)."""
    try:
        send()
    except HubProtocolError as exc:
        if not exc.permanent:
            _mark(store, ids, str(exc), done=False)
            warnings.append(str(exc))
            return False
        # The hub refused it for good (item withdrawn, unknown): keep the reason, stop retrying.
        _mark(store, ids, f"refused by the hub: {exc}", done=True)
        warnings.append(str(exc))
        return True
    except HubError as exc:
        _mark(store, ids, str(exc), done=False)
        warnings.append(str(exc))
        return False
    _mark(store, ids, None, done=True)
    return True


def flush_outbox(store: Store, hub: HubState, client: HubClient, warnings: list[str]) -> int:
    """Send this hub's queued hits (one call per item, with a count) and feedback, oldest first.

    Returns how many messages were delivered. A hub that is down keeps the rest queued and adds a
    warning; it does not stop the sync.
    """
    sent = 0
    messages = pending(store, hub.id)
    hits: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        if m["kind"] == "hit":
            hits[m["item"]].append(m["id"])
    for item_id, ids in hits.items():
        if not _send(store, ids, partial(client.hit, item_id, len(ids)), warnings):
            return sent
        sent += len(ids)
    for m in messages:
        if m["kind"] != "feedback":
            continue
        body = m["payload"]
        send = partial(client.feedback, m["item"], body["verdict"], body["reason"], body.get("note", ""))
        if not _send(store, [m["id"]], send, warnings):
            return sent
        sent += 1
    return sent
