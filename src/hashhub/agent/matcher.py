"""The in-memory side of the agent: one index per signal plus the metadata a match reports.

Loaded at start from saved files (`save_state` / `restore_state`, see `statefiles`) or else from the
store, then refreshed in place from `Store.changes_since` after every sync (its own or another
replica's), so a scan never touches the database: indexes and metadata (`metatable`) are all in
memory. Searches run without a lock; refreshes are serialised by one, and a match whose item was
withdrawn a moment ago is dropped.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hashhub import signals
from hashhub.agent import statefiles
from hashhub.agent.items import DELETED
from hashhub.agent.metatable import ItemMeta, MetaColumns, MetaTable
from hashhub.agent.statefiles import SavedState
from hashhub.agent.store import Store, StoredItem
from hashhub.index import ExactIndex, PdqIndex
from hashhub.index.vpdq import VpdqIndex
from hashhub.signals import PdqSignal, SignalError
from hashhub.snapshotfiles import release_heap
from hashhub.variants import PLAIN, PLAIN_ONLY, Variant, VariantOptions, match_variants

MatchType = Literal["exact", "perceptual"]
VIDEO_SIGNAL = "vpdq"


__all__ = ["ItemMeta", "Match", "Matcher", "parse_fingerprints", "pdq_codes"]


@dataclass(frozen=True, slots=True)
class Match:
    """One listed item that a file matched, and how closely."""

    pk: int
    hub_id: int
    meta: ItemMeta
    signal: str
    distance: int
    match_type: MatchType
    #: videos (vPDQ): share of the query's frames found in the item, and of the item's in the query
    shares: tuple[float, float] | None = None
    #: which version of the upload matched (`hashhub.variants`): "plain" is the untouched file
    variant: str = PLAIN

    def as_dict(self) -> dict[str, Any]:
        extra = {} if self.shares is None else {"query_share": self.shares[0], "listed_share": self.shares[1]}
        return {
            "hub": self.meta.hub,
            "item": self.meta.item_id,
            "list": self.meta.list_name,
            "signal": self.signal,
            "distance": self.distance,
            "match_type": self.match_type,
            "variant": self.variant,
            "classification": self.meta.classification,
            "contributors": list(self.meta.contributors),
            "verifications": self.meta.verifications,
            "status": self.meta.status,
            **extra,
        }


def pdq_codes(values: Iterable[str]) -> np.ndarray:
    """PDQ hex strings -> uint8 (n, 32), the index's code layout."""
    joined = "".join(values)
    return np.frombuffer(bytes.fromhex(joined), dtype=np.uint8).reshape(-1, 32)


@contextmanager
def _no_gc(*, when: bool) -> Iterator[None]:
    """Garbage collection paused: a first load makes millions of objects that all stay alive, and
    the collector walking them again and again cost a third of a 1M-item load."""
    paused = when and gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


class Matcher:
    def __init__(self, pdq_radius: int = PdqSignal.threshold) -> None:
        self.pdq_radius = pdq_radius
        self.rev = 0
        self._pdq = PdqIndex()
        self._video = VpdqIndex()
        self._videos: dict[int, str] = {}  # vPDQ values by pk, kept for saving (videos are few)
        self._exact: dict[str, ExactIndex] = {}
        self._meta = MetaTable()
        # Refreshes run one at a time (_refreshing); the short in-memory apply step and exact
        # lookups share _lock, so a scan never sees an index half-way through a change. PDQ searches
        # need neither: the index is safe to search while it changes.
        self._refreshing = threading.Lock()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._meta)

    @property
    def pdq_count(self) -> int:
        return len(self._pdq)

    def refresh(self, store: Store) -> int:
        """Apply what the store changed since the last refresh; returns how many items changed."""
        with self._refreshing, _no_gc(when=self.rev == 0):
            if self.rev == 0 and not len(self._meta):
                loaded = self._load_all(store)
                release_heap()  # the rows read on the way: a 1M-item load freed ~150 MB
                return loaded
            rev, items = store.changes_since(self.rev)
            with self._lock:
                if items:
                    self._meta.hubs.update(store.hub_urls())
                    self._apply(items)
                self.rev = max(rev, self.rev)
            return len(items)

    def _load_all(self, store: Store) -> int:
        """A first load: every live item, read as columns (a million items in seconds: no object
        per item on the way)."""
        live = store.live_items()
        columns = MetaColumns.from_columns(live.listing, self._meta.columns.tables)
        with self._lock:
            self._meta.hubs.update(store.hub_urls())
            self._meta.reset(columns)
            self._add_fingerprints(live.fingerprints)
            self.rev = max(live.rev, self.rev)
        return len(live)

    def _apply(self, items: list[StoredItem]) -> None:
        # Removals first, then adds, one call per index: bulk operations keep a 1M-item load fast.
        stale = self._meta.live([it.pk for it in items])
        if stale:
            ids = np.asarray(stale, dtype=np.int64)
            self._pdq.remove(ids)
            for index in self._exact.values():
                index.remove(ids)
            videos = [pk for pk in stale if self._videos.pop(pk, None) is not None]
            if videos:
                self._video.remove(videos)
        by_signal: dict[str, tuple[list[int], list[str]]] = {}
        rows: list[StoredItem] = []
        removed: list[int] = []
        for it in items:
            if it.status == DELETED:
                removed.append(it.pk)
                continue
            rows.append(it)  # a StoredItem is the MetaRow the table keeps
            for name, value in it.fingerprints.items():
                ids, values = by_signal.get(name) or by_signal.setdefault(name, ([], []))
                ids.append(it.pk)
                values.append(value)
        self._meta.apply(rows, removed)
        self._add_fingerprints(by_signal)

    def _add_fingerprints(self, by_signal: Mapping[str, tuple[list[int], list[str]]]) -> None:
        """Add (pks, values) per signal to that signal's index, one bulk call each."""
        for name, (ids, values) in by_signal.items():
            pks = np.asarray(ids, dtype=np.int64)
            if name == PdqSignal.name:
                self._pdq.add(pks, pdq_codes(values))
            elif name == VIDEO_SIGNAL:
                pairs = list(zip(ids, values, strict=True))
                self._video.add_many(pairs)
                self._videos.update(pairs)
            elif signals.get(name).index_kind == "exact":
                self._exact.setdefault(name, ExactIndex()).add(pks, [v.encode() for v in values])
            # vector signals (PhotoDNA) cannot be computed here, so they are never queried

    # -- saved state ---------------------------------------------------------------------------------

    def save_state(self, directory: Path, store_id: str) -> int:
        """Write what this matcher holds (valid at `self.rev`) under `directory`; returns the rev."""
        with self._refreshing:  # no refresh moves rev while the parts are written
            state = SavedState(
                store_id=store_id,
                rev=self.rev,
                pdq=self._pdq,
                exact=dict(self._exact),
                videos=dict(self._videos),
                meta=self._meta.folded(),
            )
            statefiles.save(directory, state)
            return state.rev

    def restore_state(self, directory: Path, store: Store) -> int:
        """Take over the state saved under `directory`; returns the revision it is valid at (the
        next `refresh` applies the store's changes after it).

        Raises StateFileError when there is none, it is damaged, or it belongs to another store (or
        to a later revision than the store has: the store was replaced by an older copy).
        """
        store_id, store_rev = store.identity()
        state = statefiles.load(directory)
        if state.store_id != store_id:
            raise statefiles.StateFileError(f"{directory} was saved from another store ({state.store_id}).")
        if state.rev > store_rev:
            raise statefiles.StateFileError(
                f"{directory} is at revision {state.rev}, ahead of the store's {store_rev}."
            )
        video = VpdqIndex()
        if state.videos:
            video.add_many(state.videos.items())
        meta = MetaTable(state.meta)
        meta.hubs.update(store.hub_urls())
        with self._refreshing, self._lock:
            self._pdq, self._exact, self._video, self._videos = state.pdq, state.exact, video, state.videos
            self._meta, self.rev = meta, state.rev
        return state.rev

    def match(self, hashes: Mapping[str, str], quality: Mapping[str, int] | None = None) -> list[Match]:
        """Matches for one file's fingerprints, best (exact, then nearest) first, one per item."""
        return self.match_many([hashes], [quality or {}])[0]

    def match_many(
        self,
        hashes: list[Mapping[str, str]],
        qualities: list[Mapping[str, int]] | None = None,
        variants: list[Sequence[Variant]] | None = None,
        options: VariantOptions = PLAIN_ONLY,
    ) -> list[list[Match]]:
        """`match` for many files at once; plain PDQ queries go to the index in one batch.

        `variants[row]`: the file's other query variants (`hashhub.detect`), matched within their
        own radii (`options`); an item the plain hash (or an exact signal) found is reported as
        "plain", any other under the nearest variant that found it.
        """
        qualities = qualities or [{} for _ in hashes]
        found: list[dict[int, Match]] = [{} for _ in hashes]
        pdq_rows: list[int] = []
        pdq_values: list[str] = []
        video_rows: list[int] = []
        video_values: list[str] = []
        for row, (file_hashes, quality) in enumerate(zip(hashes, qualities, strict=True)):
            for name, value in file_hashes.items():
                if not value:
                    continue
                if name == PdqSignal.name:
                    if PdqSignal.usable(quality.get(name)):
                        pdq_rows.append(row)
                        pdq_values.append(value)
                    continue
                if name == VIDEO_SIGNAL:
                    video_rows.append(row)
                    video_values.append(value)
                    continue
                with self._lock:
                    index = self._exact.get(name)
                    pks = index.search([value.encode()])[0].tolist() if index is not None else []
                for pk in pks:
                    self._keep(found[row], int(pk), name, 0, "exact")
        if pdq_values:
            results = self._pdq.search(pdq_codes(pdq_values), radius=self.pdq_radius)
            for row, (ids, distances) in zip(pdq_rows, results, strict=True):
                for pk, distance in zip(ids.tolist(), distances.tolist(), strict=True):
                    self._keep(found[row], pk, PdqSignal.name, int(distance), "perceptual")
        if video_values and len(self._video):
            for row, videos in zip(video_rows, self._video.search_many(video_values), strict=True):
                for v in videos:
                    # Distance for a video: the percentage of its frames that found no match.
                    distance = round((1.0 - v.query_share) * 100)
                    self._keep(
                        found[row],
                        v.id,
                        VIDEO_SIGNAL,
                        distance,
                        "perceptual",
                        (v.query_share, v.listed_share),
                    )
        for row, extra in enumerate(variants or []):
            if extra:
                self._match_variants(found[row], extra, options)
        return [
            sorted(f.values(), key=lambda m: (m.match_type != "exact", m.variant != PLAIN, m.distance))
            for f in found
        ]

    def _match_variants(
        self, found: dict[int, Match], variants: Sequence[Variant], options: VariantOptions
    ) -> None:
        for variant, ids, distances in match_variants(variants, self._pdq, self.pdq_radius, options=options):
            for pk, distance in zip(ids.tolist(), distances.tolist(), strict=True):
                if pk not in found:  # what the untouched file matched stays reported as plain
                    self._keep(found, pk, PdqSignal.name, int(distance), "perceptual", variant=variant)

    def _keep(
        self,
        found: dict[int, Match],
        pk: int,
        signal: str,
        distance: int,
        kind: MatchType,
        shares: tuple[float, float] | None = None,
        variant: str = PLAIN,
    ) -> None:
        entry = self._meta.get(pk)
        if entry is None:
            return
        best = found.get(pk)
        if best is not None and (best.match_type == "exact" or best.distance <= distance):
            return
        found[pk] = Match(pk, entry[0], entry[1], signal, distance, kind, shares, variant)


def parse_fingerprints(raw: Mapping[str, object]) -> dict[str, str]:
    """Canonical {signal: value} from caller-supplied fingerprints, or SignalError naming the bad one."""
    out: dict[str, str] = {}
    for name, value in raw.items():
        canonical_name, canonical_value = signals.parse(name, value)
        out[canonical_name] = canonical_value
    if not out:
        raise SignalError("fingerprints", "no fingerprints given")
    return out
