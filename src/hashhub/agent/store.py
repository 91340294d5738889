"""The agent's local store: followed hubs with their cursors, and the items they shared.

Writes that come from a hub go through `apply_batch`, which commits a batch of changes and the hub's
new cursor in one transaction, so a crash either keeps both or neither (never a lost or doubled
change). Readers follow the store with `changes_since(rev)`; the in-memory matcher uses that both to
load at start and to pick up what any replica's sync wrote since.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Engine,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from hashhub import db
from hashhub.agent.items import DELETED, HubItem
from hashhub.agent.metatable import MetaRow
from hashhub.agent.models import AgentState, Fingerprint, Hub, Item, utcnow


class UnknownHubError(LookupError):
    """The store follows no hub at that URL."""


@dataclass(frozen=True, slots=True)
class HubState:
    id: int
    url: str
    api_key: str
    cursor: int
    bootstrapped: bool
    last_sync_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None

    def public(self) -> dict[str, Any]:
        """The hub's status without its credentials."""
        return {
            "hub": self.url,
            "cursor": self.cursor,
            "bootstrapped": self.bootstrapped,
            "last_sync_at": self.last_sync_at.isoformat() if self.last_sync_at else None,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
        }


@dataclass(frozen=True, slots=True)
class StoredItem(MetaRow):
    """An item as the matcher sees it: local pk, where it came from, its listing, and its
    fingerprints."""

    fingerprints: dict[str, str] = field(kw_only=True)


@dataclass(frozen=True)
class LiveItems:
    """Every live item at one moment, as columns sorted by pk: what a first load reads (a million
    items as a few lists, not a million objects)."""

    rev: int
    #: MetaRow field (`metatable.ROW_FIELDS`) -> one value per item
    listing: dict[str, Sequence[Any]]
    #: signal -> (pks, values)
    fingerprints: dict[str, tuple[list[int], list[str]]]

    def __len__(self) -> int:
        return len(self.listing.get("pk", ()))


@dataclass(frozen=True, slots=True)
class Change:
    """One change to apply: an upsert (item set) or a delete (item None) of a hub's item id."""

    item_id: str
    item: HubItem | None


def _hub_state(row: Hub) -> HubState:
    return HubState(
        id=row.id,
        url=row.url,
        api_key=row.api_key,
        cursor=row.cursor,
        bootstrapped=row.bootstrapped,
        last_sync_at=row.last_sync_at,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
    )


def normalise_hub_url(url: str) -> str:
    text = url.strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise ValueError(f"A hub URL starts with http:// or https://, got {url!r}.")
    return text


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessions()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session in a write transaction (SQLite: BEGIN IMMEDIATE), committed on success."""
        with db.write(self.engine) as conn, Session(bind=conn, expire_on_commit=False) as s:
            yield s
            s.flush()

    # --- hubs -------------------------------------------------------------------------------------

    def follow(self, url: str, api_key: str) -> HubState:
        """Follow a hub (or update its key); the cursor of a hub already followed is kept."""
        url = normalise_hub_url(url)
        with self.writing() as s:
            row = s.scalar(select(Hub).where(Hub.url == url))
            if row is None:
                row = Hub(url=url, api_key=api_key, cursor=0, bootstrapped=False)
                s.add(row)
            else:
                row.api_key = api_key
            s.flush()
            return _hub_state(row)

    def hubs(self) -> list[HubState]:
        with self.sessions() as s:
            return [_hub_state(h) for h in s.scalars(select(Hub).order_by(Hub.id))]

    def hub(self, url: str) -> HubState:
        url = normalise_hub_url(url)
        with self.sessions() as s:
            row = s.scalar(select(Hub).where(Hub.url == url))
            if row is None:
                raise UnknownHubError(
                    f"The agent does not follow {url}; run `hashhub agent sync --hub {url}`."
                )
            return _hub_state(row)

    def hub_urls(self) -> dict[int, str]:
        with self.sessions() as s:
            return {i: u for i, u in s.execute(select(Hub.id, Hub.url))}

    def record_success(self, hub_id: int) -> None:
        with self.writing() as s:
            s.execute(update(Hub).where(Hub.id == hub_id).values(last_sync_at=utcnow(), last_error=None))

    def record_error(self, hub_id: int, message: str) -> None:
        with self.writing() as s:
            s.execute(update(Hub).where(Hub.id == hub_id).values(last_error=message, last_error_at=utcnow()))

    # --- items ------------------------------------------------------------------------------------

    def apply_batch(
        self,
        hub_id: int,
        changes: Sequence[Change],
        cursor: int | None = None,
        *,
        bootstrapped: bool | None = None,
    ) -> int:
        """Apply changes in order and move the hub's cursor forward, in one transaction.

        The cursor never goes backwards: a batch whose cursor is not ahead of the stored one is a
        replay (another replica, or a retry after a crash) and changes nothing. Returns how many
        changes were applied.
        """
        with self.writing() as s:
            hub = s.get(Hub, hub_id, with_for_update=True)
            if hub is None:
                raise UnknownHubError(f"hub #{hub_id} is not followed")
            if cursor is not None and cursor <= hub.cursor and hub.bootstrapped:
                return 0
            if changes:
                self._write(s, hub_id, changes)
            if cursor is not None and cursor > hub.cursor:
                hub.cursor = cursor
            if bootstrapped is not None:
                hub.bootstrapped = bootstrapped
            return len(changes)

    def delete_missing(self, hub_id: int, keep: set[str], cursor: int) -> int:
        """After a snapshot: tombstone the hub's items it no longer lists; set the cursor. One txn."""
        with self.writing() as s:
            hub = s.get(Hub, hub_id, with_for_update=True)
            if hub is None:
                raise UnknownHubError(f"hub #{hub_id} is not followed")
            present = s.scalars(
                select(Item.item_id).where(Item.hub_id == hub_id, Item.status != DELETED)
            ).all()
            gone = [Change(item_id, None) for item_id in present if item_id not in keep]
            if gone:
                self._write(s, hub_id, gone)
            hub.cursor = max(hub.cursor, cursor)
            hub.bootstrapped = True
            return len(gone)

    def _next_rev(self, s: Session) -> int:
        # The counter row's lock is held until commit, so revisions become visible in order.
        s.execute(update(AgentState).where(AgentState.id == 1).values(rev=AgentState.rev + 1))
        return s.scalar(select(AgentState.rev).where(AgentState.id == 1)) or 0

    def _write(self, s: Session, hub_id: int, changes: Sequence[Change]) -> None:
        rev = self._next_rev(s)
        latest: dict[str, HubItem | None] = {}
        for change in changes:  # the last change to an item in the batch is its state
            latest.pop(change.item_id, None)
            latest[change.item_id] = change.item
        existing: dict[str, int] = {}
        ids = list(latest)
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            query = select(Item.item_id, Item.id).where(Item.hub_id == hub_id, Item.item_id.in_(chunk))
            existing.update((item_id, pk) for item_id, pk in s.execute(query))
        now = utcnow()
        touched = list(existing.values())
        for start in range(0, len(touched), 900):
            s.execute(delete(Fingerprint).where(Fingerprint.item_pk.in_(touched[start : start + 900])))

        updates: list[dict[str, Any]] = []
        inserts: list[dict[str, Any]] = []
        live: dict[str, HubItem] = {}
        for item_id, item in latest.items():
            if item is None or not item.matches:
                if item_id in existing:
                    updates.append(
                        {"id": existing[item_id], "status": DELETED, "rev": rev, "updated_at": now}
                    )
                continue
            live[item_id] = item
            row = _item_row(item, rev, now)
            if item_id in existing:
                updates.append({"id": existing[item_id], **row})
            else:
                inserts.append({"hub_id": hub_id, "item_id": item_id, **row})
        # Core statements (executemany) rather than ORM bulk operations: a 1M-item snapshot is
        # mostly this loop, and Core is several times faster here.
        items, fps = Item.__table__, Fingerprint.__table__
        if updates:
            stmt = update(items).where(items.c.id == bindparam("pk"))
            for group in _by_keys(updates):
                s.execute(stmt, [{("pk" if k == "id" else k): v for k, v in row.items()} for row in group])
        pks = dict(existing)
        if inserts:
            returned = s.execute(insert(items).returning(items.c.item_id, items.c.id), inserts)
            pks.update((item_id, pk) for item_id, pk in returned)
        fp_rows = [
            {"item_pk": pks[item_id], "signal": signal, "value": value}
            for item_id, item in live.items()
            for signal, value in item.fingerprints.items()
        ]
        if fp_rows:
            s.execute(insert(fps), fp_rows)

    def changes_since(self, rev: int) -> tuple[int, list[StoredItem]]:
        """(new rev, items written after `rev`), deleted ones included with status `deleted`.

        One query, so the items and their fingerprints come from the same moment.
        """
        query = (
            select(
                Item.id,
                Item.hub_id,
                Item.item_id,
                Item.list_name,
                # Raw JSON text: a million items share a handful of distinct values, so each is
                # decoded once and shared (memory and load time), see `shared` below.
                type_coerce(Item.contributors, Text),
                type_coerce(Item.classification, Text),
                Item.verifications,
                Item.status,
                Item.rev,
                Fingerprint.signal,
                Fingerprint.value,
            )
            .outerjoin(Fingerprint, Fingerprint.item_pk == Item.id)
            .where(Item.rev > rev)
            .order_by(Item.id)
        )
        if rev == 0:  # a first load has nothing to forget
            query = query.where(Item.status != DELETED)
        items: list[StoredItem] = []
        newest = rev
        shared = _SharedJson()
        with db.read(self.engine, snapshot=True) as conn:
            current: StoredItem | None = None
            for row in conn.execute(query):
                pk, hub_id, item_id, list_name, contributors, cls, verifs, status, item_rev, sig, val = row
                if current is None or current.pk != pk:
                    current = StoredItem(
                        pk=pk,
                        hub_id=hub_id,
                        item_id=item_id,
                        list_name=list_name,
                        contributors=shared(contributors, ()),
                        classification=shared(cls, {}),
                        verifications=verifs,
                        status=status,
                        fingerprints={},
                    )
                    items.append(current)
                    newest = item_rev if item_rev > newest else newest
                if sig is not None:
                    current.fingerprints[sig] = val
        return newest, items

    def live_items(self) -> LiveItems:
        """Every live item and its fingerprints as columns (two queries, one snapshot)."""
        items = (
            select(
                Item.id,
                Item.hub_id,
                Item.item_id,
                Item.list_name,
                cast(Item.contributors, Text),  # text on every database: decoded once per value
                cast(Item.classification, Text),
                Item.verifications,
                Item.status,
                Item.rev,
            )
            .where(Item.status != DELETED)
            .order_by(Item.id)
        )
        # Only live items have fingerprints (`_write` deletes a withdrawn item's), so no join.
        fingerprints = select(Fingerprint.item_pk, Fingerprint.signal, Fingerprint.value).order_by(
            Fingerprint.item_pk
        )
        with db.read(self.engine, snapshot=True) as conn:
            rows = conn.execute(items).all()
            fp_rows = conn.execute(fingerprints).all()
        by_signal = _by_signal(fp_rows)
        del fp_rows
        if not rows:
            return LiveItems(0, {}, by_signal)
        pk, hub_id, item_id, list_name, contributors, classification, verifications, status, rev = zip(
            *rows, strict=True
        )
        del rows
        listing = {
            "pk": pk,
            "hub_id": hub_id,
            "item_id": item_id,
            "list_name": list_name,
            "contributors": _decoded(contributors, ()),
            "classification": _decoded(classification, {}),
            "verifications": verifications,
            "status": status,
        }
        return LiveItems(max(rev), listing, by_signal)

    def identity(self) -> tuple[str, int]:
        """(store id, current revision): which store this is, and how far its changes go.

        The id is random per store (migration 0002), so saved index files can tell a store they
        were written from apart from a replaced or re-created one.
        """
        with db.read(self.engine) as conn:
            store_id, rev = conn.execute(text("SELECT store_id, rev FROM agent_state WHERE id = 1")).one()
        return str(store_id or ""), int(rev or 0)

    def local_path(self) -> Path | None:
        """The SQLite database file (locks and saved index files live beside it); None for a
        database server or an in-memory database."""
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        return Path(url.database).resolve()

    def count_items(self, hub_id: int | None = None) -> int:
        query = select(func.count()).select_from(Item).where(Item.status != DELETED)
        if hub_id is not None:
            query = query.where(Item.hub_id == hub_id)
        with self.sessions() as s:
            return s.scalar(query) or 0


def _by_signal(rows: Sequence[tuple[int, str, str]]) -> dict[str, tuple[list[int], list[str]]]:
    """(pk, signal, value) rows -> signal: (pks, values), in row order; C-level loops only (a
    million rows hold a few signals)."""
    if not rows:
        return {}
    pks, signals, values = zip(*rows, strict=True)
    names = dict.fromkeys(signals)
    if len(names) == 1:
        return {signals[0]: (list(pks), list(values))}
    grouped = {}
    for name in names:
        mine = [s == name for s in signals]
        grouped[name] = (list(compress(pks, mine)), list(compress(values, mine)))
    return grouped


class _SharedJson:
    """JSON values decoded once per distinct text, the value shared by every row holding it: a
    million items hold a handful of distinct contributor lists and classifications (memory and load
    time). Lists become tuples."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def __call__(self, raw: Any, empty: Any) -> Any:
        if not isinstance(raw, str):  # PostgreSQL's driver hands JSON over already decoded
            return empty if raw is None else tuple(raw) if isinstance(raw, list) else raw
        value = self._values.get(raw)
        if value is None:
            loaded = orjson.loads(raw) if raw else empty
            value = self._values[raw] = tuple(loaded) if isinstance(loaded, list) else loaded
        return value


def _decoded(raw: Sequence[str | None], empty: Any) -> list[Any]:
    """A column of JSON texts decoded (`_SharedJson`), with one Python call per distinct text."""
    shared = _SharedJson()
    values = {text_value: shared(text_value, empty) for text_value in dict.fromkeys(raw)}
    return list(map(values.__getitem__, raw))


def _by_keys(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped by their key set (executemany needs the same parameters in every row)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


def _item_row(item: HubItem, rev: int, now: datetime) -> dict[str, Any]:
    return {
        "list_name": item.list_name,
        "contributor": item.contributor,
        "contributors": list(item.contributors),
        "external_id": item.external_id,
        "content_type": item.content_type,
        "classification": item.classification,
        "verifications": item.verifications,
        "labels": item.labels,
        "status": item.status,
        "rev": rev,
        "updated_at": now,
    }
