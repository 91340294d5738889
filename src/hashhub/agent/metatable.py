"""What a match reports about each listed item, kept in memory as numpy columns.

A million items as Python objects cost hundreds of megabytes and seconds to build; as columns they
are a few arrays that load from files in milliseconds. `MetaColumns` is an immutable, pk-sorted set
of rows (what start-up loads or a bulk load builds); `MetaTable` puts a small dict of recent changes
over it and folds that into new columns once it grows. Strings that repeat (list names, contributor
sets, classifications, statuses) are stored once in `ValueTables` and referred to by number.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import numpy as np
import orjson

#: overlay entries that trigger a fold into new columns (at least; or 1/8 of the columns' rows)
FOLD_AT = 65_536


@dataclass(frozen=True, slots=True)
class Listing:
    """What a hub lists about an item: the facts a match reports. Declared once; the types that
    carry them add only how the item is keyed."""

    item_id: str
    list_name: str | None
    contributors: tuple[str, ...]
    classification: dict[str, Any]
    verifications: int
    status: str

    def listed_by(self, hub: str) -> ItemMeta:
        return ItemMeta(
            self.item_id,
            self.list_name,
            self.contributors,
            self.classification,
            self.verifications,
            self.status,
            hub=hub,
        )


@dataclass(frozen=True, slots=True)
class ItemMeta(Listing):
    """A listed item as a match reports it: the listing and the URL of the hub sharing it."""

    hub: str = field(kw_only=True)


@dataclass(frozen=True, slots=True)
class MetaRow(Listing):
    """One item's listing before it is put in columns: its local pk and hub by local id, not URL
    (the store's `StoredItem` is one, so a refresh hands its items over as they are)."""

    pk: int = field(kw_only=True)
    hub_id: int = field(kw_only=True)


def _json_key(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@dataclass
class ValueTables:
    """Distinct repeated values, each stored once; columns hold their position here."""

    lists: list[str | None] = field(default_factory=list)
    contributors: list[tuple[str, ...]] = field(default_factory=list)
    classifications: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    def encoder(self) -> _Encoder:
        return _Encoder(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "lists": self.lists,
            "contributors": [list(c) for c in self.contributors],
            "classifications": self.classifications,
            "statuses": self.statuses,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ValueTables:
        return cls(
            lists=list(raw["lists"]),
            contributors=[tuple(c) for c in raw["contributors"]],
            classifications=list(raw["classifications"]),
            statuses=list(raw["statuses"]),
        )


class _Encoder:
    """Position of a value in (a copy of) the tables, appending values not seen yet."""

    def __init__(self, tables: ValueTables) -> None:
        self.tables = ValueTables(
            list(tables.lists), list(tables.contributors), list(tables.classifications), list(tables.statuses)
        )
        self._lists = {v: i for i, v in enumerate(self.tables.lists)}
        self._contributors = {v: i for i, v in enumerate(self.tables.contributors)}
        self._classifications = {_json_key(v): i for i, v in enumerate(self.tables.classifications)}
        self._statuses = {v: i for i, v in enumerate(self.tables.statuses)}
        # Rows of one bulk load share a handful of dict objects: remember them by identity too, so
        # a million rows are not serialised a million times.
        self._by_identity: dict[int, tuple[dict[str, Any], int]] = {}

    @staticmethod
    def _code(index: dict[Any, int], values: list[Any], key: Any, value: Any) -> int:
        code = index.get(key)
        if code is None:
            code = index[key] = len(values)
            values.append(value)
        return code

    def list_name(self, value: str | None) -> int:
        return self._code(self._lists, self.tables.lists, value, value)

    def contributors(self, value: tuple[str, ...]) -> int:
        value = tuple(value)
        return self._code(self._contributors, self.tables.contributors, value, value)

    def classification(self, value: dict[str, Any]) -> int:
        seen = self._by_identity.get(id(value))
        if seen is not None and seen[0] is value:
            return seen[1]
        code = self._code(self._classifications, self.tables.classifications, _json_key(value), value)
        self._by_identity[id(value)] = (value, code)
        return code

    def status(self, value: str) -> int:
        return self._code(self._statuses, self.tables.statuses, value, value)

    def codes(self, name: str, values: Sequence[Any]) -> np.ndarray:
        """The code of each of `values` (a column of the MetaRow field `name`), each distinct value
        encoded once: a million rows hold a handful of distinct values, so the per-row work is one
        dict lookup in C rather than a Python call."""
        encode = getattr(self, name)
        if name == "classification":  # dicts (unhashable): rows share the decoded objects
            first = {id(v): v for v in values}
            by_id = {key: encode(v) for key, v in first.items()}
            return np.fromiter(map(by_id.__getitem__, map(id, values)), np.int32, len(values))
        by_value = {v: encode(v) for v in dict.fromkeys(values)}
        return np.fromiter(map(by_value.__getitem__, values), np.int32, len(values))


#: a MetaRow's fields, in the order `MetaColumns.from_columns` takes them
ROW_FIELDS = (
    "pk",
    "hub_id",
    "item_id",
    "list_name",
    "contributors",
    "classification",
    "verifications",
    "status",
)
#: MetaRow fields stored as codes into ValueTables -> their column
_CODED = {
    "list_name": "lists",
    "contributors": "contributors",
    "classification": "classifications",
    "status": "statuses",
}

#: the column names and dtypes, as saved to files (item ids are a byte blob plus offsets)
COLUMNS: dict[str, type] = {
    "pks": np.int64,
    "hub_ids": np.int32,
    "id_offsets": np.int64,
    "id_blob": np.uint8,
    "lists": np.int32,
    "contributors": np.int32,
    "classifications": np.int32,
    "verifications": np.int32,
    "statuses": np.int32,
}


@dataclass(frozen=True)
class MetaColumns:
    """Rows sorted by pk; never changed once built (files may be memory-mapped read-only)."""

    arrays: dict[str, np.ndarray]
    tables: ValueTables

    @classmethod
    def empty(cls) -> MetaColumns:
        return cls.build([], ValueTables())

    @classmethod
    def build(cls, rows: Iterable[MetaRow], tables: ValueTables) -> MetaColumns:
        ordered = sorted(rows, key=attrgetter("pk"))
        transposed = zip(*map(attrgetter(*ROW_FIELDS), ordered), strict=True)
        return cls.from_columns(dict(zip(ROW_FIELDS, transposed, strict=True)) if ordered else {}, tables)

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence[Any]], tables: ValueTables) -> MetaColumns:
        """Columns from one sequence per MetaRow field (`ROW_FIELDS`), rows sorted by pk: a bulk
        load builds these straight from the store, with no object per row."""
        enc = tables.encoder()
        n = len(columns.get("pk", ()))
        empty: tuple[Any, ...] = ()
        ids = list(map(str.encode, columns.get("item_id", empty)))
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(np.fromiter(map(len, ids), np.int64, n), out=offsets[1:])
        arrays = {
            "pks": np.fromiter(columns.get("pk", empty), np.int64, n),
            "hub_ids": np.fromiter(columns.get("hub_id", empty), np.int32, n),
            "id_offsets": offsets,
            "id_blob": np.frombuffer(b"".join(ids), np.uint8).copy(),
            "verifications": np.fromiter(columns.get("verifications", empty), np.int32, n),
        }
        for field_name, column in _CODED.items():
            arrays[column] = enc.codes(field_name, columns.get(field_name, empty))
        return cls({name: arrays[name] for name in COLUMNS}, enc.tables)

    def __len__(self) -> int:
        return int(self.arrays["pks"].shape[0])

    def row_of(self, pk: int) -> int:
        """The row holding `pk`, or -1."""
        pks = self.arrays["pks"]
        at = int(np.searchsorted(pks, pk))
        return at if at < pks.shape[0] and int(pks[at]) == pk else -1

    def rows_of(self, pks: np.ndarray) -> np.ndarray:
        """A mask: which of `pks` have a row here."""
        have = self.arrays["pks"]
        if not have.shape[0]:
            return np.zeros(pks.shape[0], bool)
        at = np.minimum(np.searchsorted(have, pks), have.shape[0] - 1)
        return have[at] == pks

    def meta(self, row: int, hubs: Mapping[int, str]) -> tuple[int, ItemMeta]:
        a, t = self.arrays, self.tables
        hub_id = int(a["hub_ids"][row])
        start, stop = int(a["id_offsets"][row]), int(a["id_offsets"][row + 1])
        return hub_id, ItemMeta(
            hub=hubs.get(hub_id, ""),
            item_id=a["id_blob"][start:stop].tobytes().decode(),
            list_name=t.lists[a["lists"][row]],
            contributors=t.contributors[a["contributors"][row]],
            classification=t.classifications[a["classifications"][row]],
            verifications=int(a["verifications"][row]),
            status=t.statuses[a["statuses"][row]],
        )

    def merged(self, overlay: Mapping[int, MetaRow | None]) -> MetaColumns:
        """New columns: these rows less every pk in `overlay`, plus the overlay's live rows."""
        a = self.arrays
        changed = np.fromiter(overlay, np.int64, len(overlay))
        kept = np.flatnonzero(~np.isin(a["pks"], changed))
        fresh = MetaColumns.build((r for r in overlay.values() if r is not None), self.tables)
        f = fresh.arrays
        pks = np.concatenate([a["pks"][kept], f["pks"]])
        order = np.argsort(pks, kind="stable")
        # Item ids: each row's (start, length) in the two blobs side by side, gathered in pk order.
        joined = np.concatenate([a["id_blob"], f["id_blob"]])
        starts = np.concatenate([a["id_offsets"][:-1][kept], f["id_offsets"][:-1] + a["id_blob"].shape[0]])
        lengths = np.concatenate([np.diff(a["id_offsets"])[kept], np.diff(f["id_offsets"])])
        blob, offsets = _gather(joined, starts[order], lengths[order])
        arrays = {"pks": pks[order], "id_offsets": offsets, "id_blob": blob}
        for name in ("hub_ids", "lists", "contributors", "classifications", "verifications", "statuses"):
            arrays[name] = np.concatenate([a[name][kept], f[name]])[order]
        return MetaColumns(arrays, fresh.tables)


def _gather(blob: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The byte ranges (starts, lengths) of `blob` back to back, and their offsets (n + 1)."""
    offsets = np.zeros(lengths.shape[0] + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    within = np.arange(int(offsets[-1]), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    return blob[np.repeat(starts, lengths) + within], offsets


class MetaTable:
    """Metadata by item pk: columns plus a dict of changes since they were built.

    Readers take `(columns, overlay)` in one attribute read and never lock; the one writer (the
    matcher's refresh) mutates the overlay in place and swaps in new columns when folding.
    """

    def __init__(self, columns: MetaColumns | None = None) -> None:
        self.hubs: dict[int, str] = {}
        cols = columns or MetaColumns.empty()
        self._view: tuple[MetaColumns, dict[int, MetaRow | None]] = (cols, {})
        self._count = len(cols)
        self._write = threading.Lock()

    def __len__(self) -> int:
        return self._count

    @property
    def columns(self) -> MetaColumns:
        return self._view[0]

    def get(self, pk: int) -> tuple[int, ItemMeta] | None:
        cols, overlay = self._view
        if pk in overlay:
            row = overlay[pk]
            if row is None:
                return None
            return row.hub_id, row.listed_by(self.hubs.get(row.hub_id, ""))
        at = cols.row_of(pk)
        return None if at < 0 else cols.meta(at, self.hubs)

    def live(self, pks: list[int]) -> list[int]:
        """Those of `pks` that have metadata now."""
        cols, overlay = self._view
        arr = np.asarray(pks, np.int64)
        in_cols = cols.rows_of(arr)
        return [
            pk
            for pk, there in zip(pks, in_cols.tolist(), strict=True)
            if (overlay[pk] is not None if pk in overlay else there)
        ]

    def apply(self, rows: Iterable[MetaRow], removed: Iterable[int]) -> None:
        """Upsert `rows` and drop `removed` pks; folds the changes into new columns when large."""
        with self._write:
            cols, overlay = self._view
            if not len(cols) and not overlay:  # a first (bulk) load goes straight into columns
                built = MetaColumns.build(rows, cols.tables)
                self._view, self._count = (built, {}), len(built)
                return
            for pk in removed:
                if self._is_live(pk):
                    self._count -= 1
                overlay[pk] = None
            for row in rows:
                if not self._is_live(row.pk):
                    self._count += 1
                overlay[row.pk] = row
            if len(overlay) >= max(FOLD_AT, len(cols) // 8):
                self._fold()

    def reset(self, columns: MetaColumns) -> None:
        """Replace every row with `columns` (a first load built straight from the store)."""
        with self._write:
            self._view, self._count = (columns, {}), len(columns)

    def _is_live(self, pk: int) -> bool:
        cols, overlay = self._view
        if pk in overlay:
            return overlay[pk] is not None
        return cols.row_of(pk) >= 0

    def _fold(self) -> None:
        cols, overlay = self._view
        merged = cols.merged(overlay)
        self._view = (merged, {})
        self._count = len(merged)

    def folded(self) -> MetaColumns:
        """All rows as columns (folding pending changes first): what gets saved."""
        with self._write:
            if self._view[1]:
                self._fold()
            return self._view[0]
