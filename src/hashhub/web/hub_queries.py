"""Read-only queries the hub's pages need beyond the services: bounded pages and cached aggregates.

Every list page is a keyset page (`WHERE id < :before ORDER BY id DESC LIMIT n`) on an indexed
column, so it costs the same on a 3.5M-item hub as on an empty one. Dashboard counts group the whole
visible pool, which is not free at that size, so they are cached per visibility scope and refreshed in
the background (see `Cached`): no page waits for a full count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hashhub import db
from hashhub.hub import auth, heads
from hashhub.hub.models import (
    api_keys,
    audit_log,
    changes,
    feedback,
    fingerprints,
    hits,
    items,
    lists,
    organisations,
)

log = logging.getLogger(__name__)

PAGE = 50
GROWTH_DAYS = 30
AUDIT_WINDOW = 200_000
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
        parts: list[sa.ColumnElement[bool]] = []
        if self.readable:
            parts.append(items.c.list_id.in_([i for i, _ in self.readable]))
        if self.own is not None:
            parts.append(items.c.contributor_id == self.own)
        return sa.or_(*parts) if parts else sa.false()


def scope_of(conn: Connection, principal: auth.Principal) -> Scope:
    # The same rules as the API: members read granted lists, contributors see their own items.
    readable = auth.granted_lists(conn, principal.org_id) if principal.has("member") else {}
    own = principal.org_id if principal.has("contributor") else None
    return Scope(tuple(sorted(readable.items())), own)


def org_names(conn: Connection) -> dict[int, str]:
    return dict(conn.execute(sa.select(organisations.c.id, organisations.c.name)).all())


# -- dashboard -----------------------------------------------------------------------------------


def dashboard(engine: Engine, scope: Scope, now: float | None = None) -> dict[str, Any]:
    """Counts by list, status, grading, contributor and signal; items added per day; hits."""
    now = time.time() if now is None else now
    out: dict[str, Any] = {
        "by_list": {},
        "by_status": {},
        "by_grading": {},
        "by_contributor": {},
        "by_signal": {},
        "growth": [],
        "hits": 0,
        "total": 0,
        "computed_at": now,
    }
    if scope.empty:
        return out
    visible = scope.where()
    with db.read(engine) as conn:
        names, list_names = org_names(conn), dict(conn.execute(sa.select(lists.c.id, lists.c.name)).all())
        keys = (
            items.c.list_id,
            items.c.contributor_id,
            items.c.scheme,
            items.c.classification,
            items.c.status,
        )
        grouped = conn.execute(sa.select(*keys, sa.func.count()).where(visible).group_by(*keys)).all()
        by_signal = conn.execute(
            sa.select(fingerprints.c.signal, sa.func.count())
            .join(items, items.c.id == fingerprints.c.item_id)
            .where(visible, items.c.status != "withdrawn")
            .group_by(fingerprints.c.signal)
        ).all()
        start_day = int(now // DAY) - GROWTH_DAYS + 1
        days = items.c.created_at / DAY
        # Whole days since 1970: SQLite's integer cast truncates, PostgreSQL's rounds, so floor there.
        day = sa.cast(days if conn.dialect.name == "sqlite" else sa.func.floor(days), sa.Integer)
        per_day = dict(
            conn.execute(
                sa.select(day, sa.func.count())
                .where(visible, items.c.created_at >= start_day * DAY)
                .group_by(day)
            ).all()
        )
        out["hits"] = int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(hits.c.count), 0))
                .join(items, items.c.id == hits.c.item_id)
                .where(visible)
            ).scalar_one()
        )
    by_list: dict[str, Counter[str]] = defaultdict(Counter)
    by_status: Counter[str] = Counter()
    by_grading: Counter[str] = Counter()
    by_contributor: Counter[str] = Counter()
    for list_id, contributor_id, scheme, value, status, n in grouped:
        by_list[list_names.get(list_id, str(list_id))][status] += n
        by_status[status] += n
        if status != "withdrawn":
            by_grading[f"{scheme} {value}"] += n
            by_contributor[names.get(contributor_id, str(contributor_id))] += n
    out.update(
        by_list={k: dict(v) for k, v in sorted(by_list.items())},
        by_status=dict(by_status),
        by_grading=dict(sorted(by_grading.items())),
        by_contributor=dict(by_contributor.most_common()),
        by_signal=dict(sorted(by_signal)),
        total=sum(by_status.values()),
        growth=[
            (time.strftime("%m-%d", time.gmtime((start_day + i) * DAY)), int(per_day.get(start_day + i, 0)))
            for i in range(GROWTH_DAYS)
        ],
    )
    return out


class Cached:
    """Per-key values computed in a background thread and recomputed when older than `ttl` seconds
    or 30 times what the last count took, whichever is longer (so recounting a huge pool costs at
    most a thirtieth of a core while people keep looking).

    A stale value is served while it is recomputed, and a visitor waits at most `wait` seconds for a
    value never computed before (`None` then: the page says the counting is under way). So no page
    load waits on a full count of a large pool, and small pools never notice."""

    def __init__(self, compute: Callable[[Any], Any], ttl: float = 60.0) -> None:
        self._compute = compute
        self._ttl = ttl
        self._values: dict[Any, tuple[float, Any]] = {}
        self._cost: dict[Any, float] = {}
        self._pending: dict[Any, threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, wait: float = 1.0) -> Any | None:
        with self._lock:
            found = self._values.get(key)
            max_age = max(self._ttl, 30 * self._cost.get(key, 0.0))
            stale = found is None or time.monotonic() - found[0] > max_age
            pending = self._pending.get(key)
            if stale and pending is None:
                pending = self._pending[key] = threading.Event()
                threading.Thread(target=self._refresh, args=(key, pending), daemon=True).start()
        if found is not None:
            return found[1]
        if pending is not None:
            pending.wait(wait)
        with self._lock:
            found = self._values.get(key)
        return found[1] if found else None

    def forget(self) -> None:
        with self._lock:
            self._values.clear()

    def _refresh(self, key: Any, done: threading.Event) -> None:
        try:
            started = time.monotonic()
            value = self._compute(key)
            with self._lock:
                self._values[key] = (time.monotonic(), value)
                self._cost[key] = time.monotonic() - started
        except Exception:  # the next visit retries; a stale value keeps being served meanwhile
            log.exception("counting the dashboard's figures failed")
        finally:
            with self._lock:
                self._pending.pop(key, None)
            done.set()


# -- items ---------------------------------------------------------------------------------------


def item_facts(conn: Connection, item_id: int) -> dict[str, Any]:
    """Provenance and fingerprints (with quality) of one item the caller was allowed to read."""
    row = conn.execute(
        sa.select(
            items.c.created_at,
            items.c.updated_at,
            lists.c.name.label("list"),
            organisations.c.name.label("contributor"),
        )
        .join(lists, lists.c.id == items.c.list_id)
        .join(organisations, organisations.c.id == items.c.contributor_id)
        .where(items.c.id == item_id)
    ).one()
    fps = conn.execute(
        sa.select(fingerprints.c.signal, fingerprints.c.value, fingerprints.c.quality)
        .where(fingerprints.c.item_id == item_id)
        .order_by(fingerprints.c.signal)
    ).all()
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
        "fingerprints": [dict(r._mapping) for r in fps],
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
    """Audit records that name this item, newest first, among the latest `AUDIT_WINDOW` records.

    The audit log has no index on its target (and every match adds a record), so the search is
    bounded to a window of the newest records by their primary key instead of scanning it all."""
    newest = heads.current(conn, heads.AUDIT)
    rows = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.at, audit_log.c.actor, audit_log.c.action, audit_log.c.detail)
        .where(audit_log.c.seq > newest - AUDIT_WINDOW, audit_log.c.target == str(item_id))
        .order_by(audit_log.c.seq.desc())
        .limit(PAGE)
    ).all()
    return [dict(r._mapping) for r in rows]


def disputed(conn: Connection, contributor_id: int, before: int | None) -> list[dict[str, Any]]:
    """The contributor's disputed items, newest id first, with the negative feedback reasons."""
    q = sa.select(
        items.c.id, items.c.external_id, items.c.scheme, items.c.classification, items.c.updated_at
    ).where(items.c.contributor_id == contributor_id, items.c.status == "disputed")
    if before is not None:
        q = q.where(items.c.id < before)
    rows = [dict(r._mapping) for r in conn.execute(q.order_by(items.c.id.desc()).limit(PAGE))]
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
    return rows


def recent_changes(conn: Connection, scope: Scope, before: int | None) -> list[dict[str, Any]]:
    """The feed's newest changes the visitor may see (upserts and tombstones), newest first."""
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
        .where(scope.where())
    )
    if before is not None:
        q = q.where(changes.c.cursor < before)
    return [dict(r._mapping) for r in conn.execute(q.order_by(changes.c.cursor.desc()).limit(PAGE))]


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


def audit_page(conn: Connection, before: int | None) -> list[dict[str, Any]]:
    q = sa.select(audit_log)
    if before is not None:
        q = q.where(audit_log.c.seq < before)
    return [dict(r._mapping) for r in conn.execute(q.order_by(audit_log.c.seq.desc()).limit(PAGE))]
