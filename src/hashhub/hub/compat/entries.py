"""What the peers' protocols read: items by last-change time, in id order, with visible feedback.

NCMEC and StopNCII clients page through "everything that changed between two times". The hub keeps
each item's current state (with `updated_at`, its last change, withdrawals included), so a window
read is one query over `items`; paging walks forward by item id (the primary key), so every page
is an index range scan and an item is seen at most once per walk. Access rules are the hub's own:
only lists granted to the calling member, and every read is audited.

Feedback follows the hub's visibility rule (`feedback.item_view`): a member sees its own feedback,
and a contributor sees all feedback on its own items; nobody else's opinion leaks to other members.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hashhub import db
from hashhub.hub import access, audit, auth
from hashhub.hub.core import Hub
from hashhub.hub.models import feedback, items, organisations


@dataclass(frozen=True, slots=True)
class Vote:
    org_id: int
    org: str
    verdict: str  # affirmative | negative
    reason: str


@dataclass(slots=True)
class Entry:
    """One item as a peer protocol shows it: current state, last change, contributor id and name."""

    id: int
    contributor_id: int
    contributor: str
    content_type: str
    status: str
    scheme: str
    classification: str
    updated_at: float
    fingerprints: dict[str, str]  # only text values (structured ones such as vPDQ have no peer form)
    votes: list[Vote] = field(default_factory=list)

    @property
    def withdrawn(self) -> bool:
        return self.status == "withdrawn"

    @property
    def second(self) -> int:
        """The last change in whole seconds, as the peers' timestamps carry it."""
        return math.floor(self.updated_at)


@dataclass(frozen=True, slots=True)
class Window:
    """Items whose last change is in [since, until) with id in [start, max_id], `size` at a time."""

    since: float
    until: float
    start: int = 1
    max_id: int | None = None
    size: int = 1000


@dataclass(slots=True)
class Page:
    entries: list[Entry]
    next_start: int | None  # None: the window is exhausted
    max_id: int  # the id bound this walk uses (fixed on its first page)


def readable(hub: Hub, principal: auth.Principal, list_name: str | None) -> dict[int, str]:
    """Lists the member may read, narrowed to `list_name` when a compat mount names one."""
    with db.read(hub.engine) as conn:
        return access.readable_lists(conn, principal, [list_name] if list_name else None)


def _entry(row: sa.Row[Any], names: dict[int, str]) -> Entry:
    doc = orjson.loads(row.doc)
    fps = {k: v for k, v in (doc.get("fingerprints") or {}).items() if isinstance(v, str)}
    return Entry(
        id=row.id,
        contributor_id=row.contributor_id,
        contributor=names.get(row.contributor_id, doc.get("contributor", "")),
        content_type=row.content_type,
        status=row.status,
        scheme=row.scheme,
        classification=row.classification,
        updated_at=row.updated_at,
        fingerprints=fps,
    )


def org_names(conn: Connection, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(organisations.c.id, organisations.c.name).where(organisations.c.id.in_(sorted(ids)))
    )
    return {r.id: r.name for r in rows}


def visible_votes(
    conn: Connection, principal: auth.Principal, item_ids: Sequence[int]
) -> dict[int, list[Vote]]:
    """Feedback on these items the caller may see: its own, and all of it on items it contributed."""
    if not item_ids:
        return {}
    visible = sa.or_(feedback.c.org_id == principal.org_id, items.c.contributor_id == principal.org_id)
    rows = conn.execute(
        sa.select(
            feedback.c.item_id, feedback.c.org_id, organisations.c.name, feedback.c.verdict, feedback.c.reason
        )
        .join(organisations, organisations.c.id == feedback.c.org_id)
        .join(items, items.c.id == feedback.c.item_id)
        .where(feedback.c.item_id.in_(sorted(set(item_ids))), visible)
        .order_by(feedback.c.item_id, organisations.c.name)
    )
    out: dict[int, list[Vote]] = {}
    for r in rows:
        out.setdefault(r.item_id, []).append(Vote(r.org_id, r.name, r.verdict, r.reason))
    return out


def load_votes(hub: Hub, principal: auth.Principal, item_ids: Sequence[int]) -> dict[int, list[Vote]]:
    with db.read(hub.engine) as conn:
        return visible_votes(conn, principal, item_ids)


def read_window(
    hub: Hub,
    principal: auth.Principal,
    lists: dict[int, str],
    window: Window,
    *,
    action: str,
) -> Page:
    """One page of entries changed in the window, oldest id first, audited as `action`."""
    changed = sa.and_(items.c.updated_at >= window.since, items.c.updated_at < window.until)
    in_lists = items.c.list_id.in_(list(lists))
    with db.read(hub.engine, snapshot=True) as conn:
        max_id = window.max_id
        if max_id is None:  # the first page fixes the walk's end, so paging always finishes
            max_id = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(items.c.id), 0))).scalar_one())
        rows = conn.execute(
            sa.select(
                items.c.id,
                items.c.contributor_id,
                items.c.content_type,
                items.c.status,
                items.c.scheme,
                items.c.classification,
                items.c.updated_at,
                items.c.doc,
            )
            .where(in_lists, changed, items.c.id >= window.start, items.c.id <= max_id)
            .order_by(items.c.id)
            .limit(window.size + 1)
        ).all()
        more = len(rows) > window.size
        rows = rows[: window.size]
        names = org_names(conn, {r.contributor_id for r in rows})
        entries = [_entry(r, names) for r in rows]
        votes = visible_votes(conn, principal, [e.id for e in entries])
        for e in entries:
            e.votes = votes.get(e.id, [])
    audit.record_now(
        hub.engine,
        principal.org,
        action,
        ",".join(sorted(lists.values())),
        {"since": window.since, "until": window.until, "start": window.start, "entries": len(entries)},
    )
    return Page(entries, entries[-1].id + 1 if more else None, max_id)


def members(hub: Hub, principal: auth.Principal, lists: dict[int, str]) -> list[tuple[int, str]]:
    """The caller and every organisation that contributed to the lists it reads: (id, name)."""
    with db.read(hub.engine) as conn:
        ids = set(
            conn.execute(
                sa.select(items.c.contributor_id).where(items.c.list_id.in_(list(lists))).distinct()
            ).scalars()
        )
        names = org_names(conn, ids | {principal.org_id})
    return sorted(names.items())
