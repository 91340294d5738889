"""The in-memory side of the agent: one index per signal plus the metadata a match reports.

Loaded from the store at start and refreshed in place from `Store.changes_since` after every sync
(its own or another replica's), so a scan never touches the database. Searches run without a lock;
refreshes are serialised by one, and a match whose item was withdrawn a moment ago is dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from hashhub import signals
from hashhub.agent.items import DELETED
from hashhub.agent.store import Store, StoredItem
from hashhub.index import ExactIndex, PdqIndex
from hashhub.index.vpdq import VpdqIndex
from hashhub.signals import PdqSignal, SignalError
from hashhub.variants import PLAIN, PLAIN_ONLY, Variant, VariantOptions, match_variants

MatchType = Literal["exact", "perceptual"]
VIDEO_SIGNAL = "vpdq"


@dataclass(frozen=True, slots=True)
class ItemMeta:
    hub: str
    item_id: str
    list_name: str | None
    contributors: tuple[str, ...]
    classification: dict[str, Any]
    verifications: int
    status: str


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


class Matcher:
    def __init__(self, pdq_radius: int = PdqSignal.threshold) -> None:
        self.pdq_radius = pdq_radius
        self.rev = 0
        self._pdq = PdqIndex()
        self._video = VpdqIndex()
        self._exact: dict[str, ExactIndex] = {}
        self._meta: dict[int, tuple[int, ItemMeta]] = {}
        self._signals_of: dict[int, tuple[str, ...]] = {}
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
        with self._refreshing:
            rev, items = store.changes_since(self.rev)
            hubs = store.hub_urls() if items else {}
            with self._lock:
                if items:
                    self._apply(items, hubs)
                self.rev = rev
            return len(items)

    def _apply(self, items: list[StoredItem], hubs: Mapping[int, str]) -> None:
        # Removals first, then adds, one call per index: bulk operations keep a 1M-item load fast.
        stale = [it.pk for it in items if it.pk in self._meta]
        if stale:
            by_signal: dict[str, list[int]] = {}
            for pk in stale:
                for name in self._signals_of.pop(pk, ()):
                    by_signal.setdefault(name, []).append(pk)
                self._meta.pop(pk, None)
            for name, pks in by_signal.items():
                if name == VIDEO_SIGNAL:
                    self._video.remove(pks)
                    continue
                index = self._pdq if name == PdqSignal.name else self._exact.get(name)
                if index is not None:
                    index.remove(np.asarray(pks, dtype=np.int64))
        pdq_ids: list[int] = []
        pdq_values: list[str] = []
        exact: dict[str, tuple[list[int], list[bytes]]] = {}
        videos: list[tuple[int, str]] = []
        kinds: dict[str, str] = {}
        for it in items:
            if it.status == DELETED:
                continue
            indexed: list[str] = []
            for name, value in it.fingerprints.items():
                kind = kinds.get(name) or kinds.setdefault(name, signals.get(name).index_kind)
                if name == PdqSignal.name:
                    pdq_ids.append(it.pk)
                    pdq_values.append(value)
                elif name == VIDEO_SIGNAL:
                    videos.append((it.pk, value))
                elif kind == "exact":
                    ids, values = exact.setdefault(name, ([], []))
                    ids.append(it.pk)
                    values.append(value.encode())
                else:
                    continue  # vector signals (PhotoDNA) cannot be computed here, so never queried
                indexed.append(name)
            self._signals_of[it.pk] = tuple(indexed)
            meta = ItemMeta(
                hub=hubs.get(it.hub_id, ""),
                item_id=it.item_id,
                list_name=it.list_name,
                contributors=it.contributors,
                classification=it.classification,
                verifications=it.verifications,
                status=it.status,
            )
            self._meta[it.pk] = (it.hub_id, meta)
        if pdq_ids:
            self._pdq.add(np.asarray(pdq_ids, dtype=np.int64), pdq_codes(pdq_values))
        for name, (ids, values) in exact.items():
            self._exact.setdefault(name, ExactIndex()).add(np.asarray(ids, dtype=np.int64), values)
        if videos:
            self._video.add_many(videos)

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
