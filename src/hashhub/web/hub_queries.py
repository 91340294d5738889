"""Read-only queries the hub's pages need beyond the services, each bounded whatever the hub's size.

List pages are keyset pages (`WHERE key < :before ORDER BY key DESC LIMIT n`) that walk a primary
key, so a page costs the same on a 3.5M-item hub as on an empty one; where a visitor's rows may be
sparse (changes, hits) the walk is also capped to a window of keys. Dashboard counts come from the
hub's in-memory pool, never from counting the items table."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hashhub import db
from hashhub.hub import auth, heads
from hashhub.hub.core import Hub
from hashhub.hub.models import (
    api_keys,
    audit_log,
    changes,
    feedback,
    hits,
    items,
    lists,
    organisations,
)

PAGE = 50
GROWTH_DAYS = 30
CHANGES_WINDOW = 100_000
HITS_WINDOW = 100_000
DAY = 86400


@dataclass(frozen=True, slots=True)
class Scope:
    """Which items a visitor may see: lists it reads (members) and its own items (contributors)."""

    readable: tuple[tuple[int, str], ...]
    own: int | None

    @property
    def empty(self) -> bool:
        return not self.readable and self.own is None

    def where(self) -> sa.ColumnElement[bool]:
        """A filter on items found by id. The pages walk a bounded key range (changes, hits) and
        look each item up; `contributor_id + 0` keeps the planner from starting at the
        contributor's index instead, which reads every item a large contributor ever listed."""
        parts: list[sa.ColumnElement[bool]] = []
        if self.readable:
            parts.append(items.c.list_id.in_([i for i, _ in self.readable]))
        if self.own is not None:
            parts.append(items.c.contributor_id + 0 == self.own)
        return sa.or_(*parts) if parts else sa.false()


def scope_of(conn: Connection, principal: auth.Principal) -> Scope:
    # The same rules as the API: members read granted lists, contributors see their own items.
    readable = auth.granted_lists(conn, principal.org_id) if principal.has("member") else {}
    own = principal.org_id if principal.has("contributor") else None
    return Scope(tuple(sorted(readable.items())), own)


def org_names(conn: Connection) -> dict[int, str]:
    return dict(conn.execute(sa.select(organisations.c.id, organisations.c.name)).all())


# -- dashboard -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecentHits:
    """Hits members reported on visible items in the last `days` days. `partial`: the newest
    `HITS_WINDOW` reports all fell in that period, so older ones in it were not counted."""

    total: int
    days: int
    partial: bool


def recent_hits(conn: Connection, scope: Scope, now: float, days: int = GROWTH_DAYS) -> RecentHits:
    """Bounded like every dashboard query: only the newest `HITS_WINDOW` hit reports (a range of
    the primary key) are read, each looked up by item id for visibility."""
    since = now - days * DAY
    newest = conn.execute(sa.select(sa.func.max(hits.c.id))).scalar_one() or 0
    window = hits.c.id > newest - HITS_WINDOW
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(hits.c.count), 0))
        .join(items, items.c.id == hits.c.item_id)
        .where(window, hits.c.at >= since, scope.where())
    ).scalar_one()
    oldest_read = conn.execute(sa.select(hits.c.at).where(window).order_by(hits.c.id).limit(1)).scalar()
    partial = newest > HITS_WINDOW and oldest_read is not None and oldest_read >= since
    return RecentHits(int(total), days, partial)


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What the dashboard shows one visitor.

    Counts come from the hub's in-memory pool (`Pool.stats()`: numpy columns, milliseconds at
    millions of items), restricted to what the visitor may see: the items of the lists it reads and
    the items it contributed. `whole` says the visitor reads every list (its counts are the hub's)."""

    whole: bool
    stats: dict[str, Any]  # Pool.stats() of what the visitor may see
    by_list: dict[str, int]  # live items per list the visitor reads
    own_live: int | None  # live items the visitor contributed (contributors only)
    own_disputes: Page | None  # the newest page of the visitor's dispute queue (contributors only)
    hits: RecentHits
    growth: list[tuple[str, int]]  # items the visitor may see added per day, oldest first

    @property
    def by_grading(self) -> dict[str, int]:
        """Live items per grading as the pages write one ("industry A1")."""
        return {k.replace(":", " ", 1): n for k, n in sorted(self.stats["by_grade"].items())}


class PoolCounts:
    """`Pool.stats()` per visitor scope, kept for the pool's cursor and the day: the pool only
    changes by catching up to a newer cursor, so visits in between reuse the counts instead of
    holding the pool's lock (which matches wait on) for the 20-30 ms a count takes at 3.5M items."""

    MAX_SCOPES = 256  # distinct visitor scopes kept for one cursor (an organisation is one scope)

    def __init__(self) -> None:
        self._key: tuple[int, int, int] | None = None
        self._counts: dict[tuple[tuple[int, ...], int | None] | None, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, hub: Hub, now: float, scope: Scope | None = None, whole: bool = True) -> dict[str, Any]:
        """Counts of what `scope` may see (every item when `whole` or no scope is given)."""
        cursor = hub.refresh()  # up to the committed head first, as a match is
        key = (id(hub.pool), cursor, int(now // DAY))
        seen = None if whole or scope is None else (tuple(sorted(i for i, _ in scope.readable)), scope.own)
        with self._lock:
            if key != self._key or len(self._counts) >= self.MAX_SCOPES:
                self._counts, self._key = {}, key
            if seen not in self._counts:
                self._counts[seen] = (
                    hub.pool.stats(now)
                    if seen is None
                    else hub.pool.stats(now, lists=seen[0], contributor=seen[1])
                )
            return self._counts[seen]


def dashboard(
    hub: Hub, scope: Scope, now: float | None = None, counts: PoolCounts | None = None
) -> Dashboard:
    """The visitor's dashboard: the pool's counts of what the visitor may see (see `PoolCounts`)
    plus two bounded queries (the dispute queue's first page, recent hits)."""
    now = time.time() if now is None else now
    readable = {name for _, name in scope.readable}
    with db.read(hub.engine) as conn:
        all_lists = set(conn.execute(sa.select(lists.c.name)).scalars())
        own_name = None if scope.own is None else org_names(conn).get(scope.own)
        disputes = None if scope.own is None else disputed(conn, scope.own, None)
        hits_seen = recent_hits(conn, scope, now)
    whole = bool(readable) and readable >= all_lists
    stats = (counts or PoolCounts()).get(hub, now, scope, whole)
    return Dashboard(
        whole=whole,
        stats=stats,
        by_list={name: stats["by_list"].get(name, 0) for name in sorted(readable)},
        own_live=None if own_name is None else stats["by_contributor"].get(own_name, 0),
        own_disputes=disputes,
        hits=hits_seen,
        growth=[(day, n) for day, n in stats["per_day"]],
    )


# -- items ---------------------------------------------------------------------------------------


def item_facts(conn: Connection, item_id: int) -> dict[str, Any]:
    """Provenance and fingerprints (with quality) of one item the caller was allowed to read."""
    row = conn.execute(
        sa.select(
            items.c.created_at,
            items.c.updated_at,
            lists.c.name.label("list"),
            organisations.c.name.label("contributor"),
            items.c.fingerprints,
            items.c.quality,
        )
        .join(lists, lists.c.id == items.c.list_id)
        .join(organisations, organisations.c.id == items.c.contributor_id)
        .where(items.c.id == item_id)
    ).one()
    quality = orjson.loads(row.quality) if row.quality else {}
    fps = [
        {"signal": signal, "value": value, "quality": quality.get(signal)}
        for signal, value in sorted(orjson.loads(row.fingerprints).items())
    ]
    history = conn.execute(
        sa.select(changes.c.cursor, changes.c.op, changes.c.kind, changes.c.at)
        .where(changes.c.item_id == item_id)
        .order_by(changes.c.cursor.desc())
        .limit(PAGE)
    ).all()
    return {
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "list": row.list,
        "contributor": row.contributor,
        "fingerprints": fps,
        "history": [dict(r._mapping) for r in history],
    }


def item_feedback(conn: Connection, item_id: int) -> list[dict[str, Any]]:
    """Feedback on one item, newest first, without who gave it (the API shows owners counts only)."""
    rows = conn.execute(
        sa.select(feedback.c.verdict, feedback.c.reason, feedback.c.note, feedback.c.at)
        .where(feedback.c.item_id == item_id)
        .order_by(feedback.c.at.desc())
        .limit(PAGE)
    ).all()
    return [dict(r._mapping) for r in rows]


def item_audit(conn: Connection, item_id: int) -> list[dict[str, Any]]:
    """The newest page of audit records that name this item (an index range on (target, seq))."""
    rows = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.at, audit_log.c.actor, audit_log.c.action, audit_log.c.detail)
        .where(audit_log.c.target == str(item_id))
        .order_by(audit_log.c.seq.desc())
        .limit(PAGE)
    ).all()
    return [dict(r._mapping) for r in rows]


class Page(NamedTuple):
    """One page of a newest-first list and where the next (older) page starts (`None`: no more)."""

    rows: list[dict[str, Any]]
    more: int | None


def _page(rows: list[dict[str, Any]], key: str, floor: int | None = None) -> Page:
    """A full page continues below its last row; a short one below `floor`, the lowest key its
    bounded query examined (rows may remain there), or nowhere when it examined down to the start."""
    if len(rows) == PAGE:
        return Page(rows, rows[-1][key])
    return Page(rows, floor if floor is not None and floor > 1 else None)


def disputed(conn: Connection, contributor_id: int, before: int | None) -> Page:
    """The contributor's disputed items, newest id first, with the negative feedback reasons.

    Only items with negative feedback can be disputed, so the page walks the feedback table's
    primary key (item_id first) downwards and looks each candidate up by id: the work follows the
    feedback given, not the millions of items the contributor may have listed."""
    found = (
        sa.select(feedback.c.item_id)
        .join(items, items.c.id == feedback.c.item_id)
        # `+ 0`: start from the feedback, not from the contributor's index (see Scope.where).
        .where(feedback.c.verdict == "negative", items.c.contributor_id + 0 == contributor_id)
        .where(items.c.status == "disputed")
        .group_by(feedback.c.item_id)
        .order_by(feedback.c.item_id.desc())
        .limit(PAGE)
    )
    if before is not None:
        found = found.where(feedback.c.item_id < before)
    ids = list(conn.execute(found).scalars())
    cols = (items.c.id, items.c.external_id, items.c.scheme, items.c.classification, items.c.updated_at)
    q = sa.select(*cols).where(items.c.id.in_(ids)).order_by(items.c.id.desc())
    rows = [dict(r._mapping) for r in conn.execute(q)] if ids else []
    reasons: dict[int, Counter[str]] = defaultdict(Counter)
    if rows:
        for item_id, reason in conn.execute(
            sa.select(feedback.c.item_id, feedback.c.reason).where(
                feedback.c.item_id.in_([r["id"] for r in rows]), feedback.c.verdict == "negative"
            )
        ):
            reasons[item_id][reason] += 1
    for r in rows:
        r["reasons"] = dict(reasons[r["id"]])
    return _page(rows, "id")


def recent_changes(conn: Connection, scope: Scope, before: int | None) -> Page:
    """The feed's newest changes the visitor may see (upserts and tombstones), newest first.

    One page examines at most `CHANGES_WINDOW` cursors below `before`: a visitor who sees a small
    part of a huge hub gets a short (or empty) page with a link further back, never a walk through
    millions of changes looking for 50 of theirs."""
    upper = heads.current(conn) + 1 if before is None else before
    floor = max(upper - CHANGES_WINDOW, 1)
    q = (
        sa.select(
            changes.c.cursor,
            changes.c.op,
            changes.c.kind,
            changes.c.at,
            changes.c.item_id,
            items.c.external_id,
            lists.c.name.label("list"),
        )
        .join(items, items.c.id == changes.c.item_id)
        .join(lists, lists.c.id == items.c.list_id)
        .where(scope.where(), changes.c.cursor < upper, changes.c.cursor >= floor)
        .order_by(changes.c.cursor.desc())
        .limit(PAGE)
    )
    return _page([dict(r._mapping) for r in conn.execute(q)], "cursor", floor)


# -- administration ------------------------------------------------------------------------------


def keys(conn: Connection) -> list[dict[str, Any]]:
    """Every API key's public facts (never its secret or digest), by organisation."""
    rows = conn.execute(
        sa.select(
            api_keys.c.id,
            organisations.c.name.label("org"),
            api_keys.c.scopes,
            api_keys.c.label,
            api_keys.c.created_at,
            api_keys.c.last_used_at,
            api_keys.c.revoked_at,
        )
        .join(organisations, organisations.c.id == api_keys.c.org_id)
        .order_by(organisations.c.name, api_keys.c.created_at)
    ).all()
    return [dict(r._mapping) for r in rows]


def audit_page(conn: Connection, before: int | None) -> Page:
    q = sa.select(audit_log)
    if before is not None:
        q = q.where(audit_log.c.seq < before)
    return _page(
        [dict(r._mapping) for r in conn.execute(q.order_by(audit_log.c.seq.desc()).limit(PAGE))], "seq"
    )
