"""What happens to an item after it is shared: member feedback and disputes, the contributor's
confirm or withdraw, and hits (matches a member acted on).

Negative feedback from `dispute_threshold` distinct members since the contributor last confirmed the
item marks it `disputed` (a feed change); the contributor confirms it (back to `active`, a feed
change) or withdraws it (a tombstone in the feed and gone from matching).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hashhub import db
from hashhub.hub import audit, auth, documents, heads
from hashhub.hub.core import Hub
from hashhub.hub.errors import Conflict, Forbidden, NotFound
from hashhub.hub.models import changes, feedback, hits, items, list_grants


def _item(conn: Connection, item_id: int) -> sa.Row[Any]:
    row = conn.execute(sa.select(items).where(items.c.id == item_id)).one_or_none()
    if row is None:
        raise NotFound(f"There is no item {item_id}.")
    return row


def _may_read(conn: Connection, principal: auth.Principal, list_id: int) -> bool:
    return bool(
        principal.has("member")
        and conn.execute(
            sa.select(list_grants.c.can_read).where(
                list_grants.c.list_id == list_id,
                list_grants.c.org_id == principal.org_id,
                list_grants.c.can_read.is_(True),
            )
        ).first()
    )


def _require_reader(conn: Connection, principal: auth.Principal, row: sa.Row[Any]) -> None:
    principal.require("member")
    if not _may_read(conn, principal, row.list_id):
        raise Forbidden(f"Organisation {principal.org!r} may not read the list item {row.id} is in.")


def _require_owner(principal: auth.Principal, row: sa.Row[Any]) -> None:
    principal.require("contributor")
    if row.contributor_id != principal.org_id:
        raise Forbidden(f"Item {row.id} belongs to another contributor; only its contributor may change it.")


def _set_status(conn: Connection, row: sa.Row[Any], status: str, kind: str) -> int:
    """Change an item's status and append the feed change; the caller holds the cursor lock."""
    cursor, _ = heads.lock(conn, heads.CHANGES)
    cursor += 1
    now = time.time()
    conn.execute(
        sa.update(items)
        .where(items.c.id == row.id)
        .values(status=status, updated_at=now, doc=documents.with_status(row.doc, status, now))
    )
    op = "delete" if status == "withdrawn" else "upsert"
    conn.execute(sa.insert(changes).values(cursor=cursor, item_id=row.id, op=op, kind=kind, at=now))
    heads.store(conn, heads.CHANGES, cursor)
    return cursor


def _negatives_since_confirmation(conn: Connection, item_id: int) -> int:
    confirmed = conn.execute(
        sa.select(sa.func.max(changes.c.at)).where(
            changes.c.item_id == item_id, changes.c.kind == "confirmed"
        )
    ).scalar()
    q = sa.select(sa.func.count()).where(feedback.c.item_id == item_id, feedback.c.verdict == "negative")
    if confirmed is not None:
        q = q.where(feedback.c.at > confirmed)
    return int(conn.execute(q).scalar_one())


def give_feedback(
    hub: Hub, principal: auth.Principal, item_id: int, verdict: str, reason: str, note: str = ""
) -> dict[str, Any]:
    with db.write(hub.engine) as conn:
        heads.lock(conn, heads.CHANGES)  # lock order: changes before audit, even if no change follows
        row = _item(conn, item_id)
        _require_reader(conn, principal, row)
        if row.status == "withdrawn":
            raise Conflict(f"Item {item_id} was withdrawn; there is nothing to give feedback on.")
        key = (feedback.c.item_id == item_id) & (feedback.c.org_id == principal.org_id)
        conn.execute(sa.delete(feedback).where(key))
        conn.execute(
            sa.insert(feedback).values(
                item_id=item_id,
                org_id=principal.org_id,
                verdict=verdict,
                reason=reason,
                note=note,
                at=time.time(),
            )
        )
        status, cursor = row.status, None
        negatives = _negatives_since_confirmation(conn, item_id)
        if status == "active" and negatives >= hub.settings.dispute_threshold:
            status = "disputed"
            cursor = _set_status(conn, row, status, "disputed")
        audit.record(
            conn, principal.org, "item.feedback", str(item_id), {"verdict": verdict, "reason": reason}
        )
    if cursor:
        hub.refresh()
    return {"item": str(item_id), "status": status, "negative": negatives, "cursor": cursor}


def _contributor_action(
    hub: Hub, principal: auth.Principal, item_id: int, action: str, reason: str
) -> dict[str, Any]:
    with db.write(hub.engine) as conn:
        heads.lock(conn, heads.CHANGES)
        row = _item(conn, item_id)
        _require_owner(principal, row)
        if row.status == "withdrawn":
            raise Conflict(f"Item {item_id} is already withdrawn.")
        if action == "confirm":
            if row.status != "disputed":
                raise Conflict(f"Item {item_id} is {row.status}, not disputed; there is nothing to confirm.")
            status, kind = "active", "confirmed"
        else:
            status, kind = "withdrawn", "withdrawn"
        cursor = _set_status(conn, row, status, kind)
        audit.record(conn, principal.org, f"item.{action}", str(item_id), {"reason": reason})
    hub.refresh()
    return {"item": str(item_id), "status": status, "cursor": cursor}


def withdraw(hub: Hub, principal: auth.Principal, item_id: int, reason: str = "") -> dict[str, Any]:
    """The item leaves the pool; the feed gets a `delete` change."""
    return _contributor_action(hub, principal, item_id, "withdraw", reason)


def confirm(hub: Hub, principal: auth.Principal, item_id: int, reason: str = "") -> dict[str, Any]:
    """The contributor stands by a disputed item: it is active again."""
    return _contributor_action(hub, principal, item_id, "confirm", reason)


def record_hit(hub: Hub, principal: auth.Principal, item_id: int, count: int = 1) -> dict[str, Any]:
    with db.write(hub.engine) as conn:
        row = _item(conn, item_id)
        _require_reader(conn, principal, row)
        conn.execute(
            sa.insert(hits).values(item_id=item_id, org_id=principal.org_id, count=count, at=time.time())
        )
        audit.record(conn, principal.org, "item.hit", str(item_id), {"count": count})
    return {"item": str(item_id), "recorded": count}


def item_view(hub: Hub, principal: auth.Principal, item_id: int) -> dict[str, Any]:
    """An item's document; its contributor also sees feedback and hit counts."""
    with db.read(hub.engine) as conn:
        row = _item(conn, item_id)
        owner = principal.has("contributor") and row.contributor_id == principal.org_id
        if not owner:
            _require_reader(conn, principal, row)
        body = orjson.loads(row.doc)
        if owner:
            votes = conn.execute(
                sa.select(feedback.c.verdict, sa.func.count())
                .where(feedback.c.item_id == item_id)
                .group_by(feedback.c.verdict)
            ).all()
            body["feedback"] = dict(votes)
            body["hits"] = int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(hits.c.count), 0)).where(hits.c.item_id == item_id)
                ).scalar_one()
            )
    return body


def stats(hub: Hub, principal: auth.Principal) -> dict[str, Any]:
    """Counts the caller may see: its own contributions and, for members, the readable pool."""
    with db.read(hub.engine) as conn:
        out: dict[str, Any] = {"org": principal.org, "cursor": heads.current(conn)}
        if principal.has("contributor"):
            mine = items.c.contributor_id == principal.org_id
            by_status = conn.execute(
                sa.select(items.c.status, sa.func.count()).where(mine).group_by(items.c.status)
            ).all()
            hit_total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(hits.c.count), 0))
                .join(items, items.c.id == hits.c.item_id)
                .where(mine)
            ).scalar_one()
            disputed = conn.execute(
                sa.select(sa.func.count())
                .select_from(feedback)
                .join(items, items.c.id == feedback.c.item_id)
                .where(mine, feedback.c.verdict == "negative")
            ).scalar_one()
            out["contributed"] = {
                "items": dict(by_status),
                "hits": int(hit_total),
                "negative_feedback": int(disputed),
            }
        if principal.has("member"):
            readable = sa.select(list_grants.c.list_id).where(
                list_grants.c.org_id == principal.org_id, list_grants.c.can_read.is_(True)
            )
            live = conn.execute(
                sa.select(sa.func.count()).where(items.c.list_id.in_(readable), items.c.status != "withdrawn")
            ).scalar_one()
            out["readable_items"] = int(live)
    return out
