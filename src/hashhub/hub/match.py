"""Match fingerprints against the pool: exact for crypto and opaque types, PDQ by Hamming radius,
PDNA by Euclidean distance, vPDQ videos by the share of frames matched (a video match's distance is
1 - its query share, and it reports both shares). Answers from the in-memory pool after catching
it up to the committed head; only lists the caller may read take part, in the matches and in the
cluster facts alike.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

import numpy as np

from hashhub import db, signals
from hashhub.hub import access, audit, auth, freshness, indexes
from hashhub.hub.core import Hub
from hashhub.hub.errors import Invalid
from hashhub.hub.pool import Pool, fingerprints_of
from hashhub.signals import PdqSignal
from hashhub.signals.vpdq import VpdqSignal, frame_codes, shares

if TYPE_CHECKING:
    from hashhub.variants import Variant, VariantOptions

#: the untouched upload (`hashhub.variants.PLAIN`, not imported here: it loads the image stack)
PLAIN = "plain"
#: the statuses of items that match (`Pool.status` names; withdrawn and unknown items never do)
LIVE = frozenset({"active", "disputed"})
#: vPDQ's radius is the share of the query's frames allowed to go unmatched (default 0.2).
MAX_RADIUS = {"exact": 0.0, "hamming": 64.0, "vector": 1e9, "video": 1.0}


def _radius(hub: Hub, signal: type[signals.SignalType], overrides: dict[str, float] | None) -> float:
    default = {"exact": 0.0, "hamming": float(hub.settings.match_pdq_radius)}.get(
        signal.index_kind, float(signal.threshold)
    )
    wanted = (overrides or {}).get(signal.name, default)
    if not 0 <= wanted <= MAX_RADIUS[signal.index_kind]:
        raise Invalid(f"radius for {signal.name} must be between 0 and {MAX_RADIUS[signal.index_kind]:g}.")
    return wanted


def parse_queries(queries: list[Any], limit: int) -> list[dict[str, str]]:
    if not isinstance(queries, list) or not queries:
        raise Invalid("'fingerprints' must be a non-empty list of {signal: value} objects.")
    if len(queries) > limit:
        raise Invalid(f"A match request holds at most {limit} fingerprints; this one has {len(queries)}.")
    parsed, rejected = [], []
    for i, query in enumerate(queries):
        try:
            if not isinstance(query, dict) or not query:
                raise ValueError("expected a non-empty {signal: value} object")
            parsed.append(dict(signals.parse(name, value) for name, value in query.items()))
        except ValueError as exc:
            rejected.append({"index": i, "error": str(exc)})
    if rejected:
        raise Invalid(f"{len(rejected)} of {len(queries)} fingerprints are invalid.", rejected=rejected)
    return parsed


class MatchPath:
    """What one serving process keeps so a match request touches no database: the readable lists
    per organisation (`GrantCache`), what tells whether the pool must catch up (hub/freshness.py:
    SQLite's change counter, or a follower thread elsewhere), and the match audit tally written in
    the background (`ActivityLog`)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.grants = access.GrantCache(hub.engine, hub.settings.key_cache_seconds)
        self._refreshing = threading.Lock()
        self.head = freshness.for_engine(hub.engine, self._catch_up)
        self.activity = audit.ActivityLog(hub.engine, hub.settings.audit_match_window_seconds)

    def refresh(self) -> None:
        """Catch the pool up, unless nothing was committed since it last did: through the
        process's follower thread where there is one (so requests read no SQL), else here."""
        if self.head.unchanged() or self.head.await_follower(freshness.FOLLOW_WAIT_S):
            return
        self._catch_up()

    def _catch_up(self) -> None:
        # One caller catches up at a time; the others wait and then usually find nothing to read.
        with self._refreshing:
            if self.head.unchanged():
                return
            version = self.head.version()
            self.hub.refresh()
            self.head.caught_up(version)

    def reopen(self) -> None:
        """In a worker forked from the process that built this path (which closed `head` before the
        fork, ending any follower thread): a probe or follower of the worker's own."""
        self.head = freshness.for_engine(self.hub.engine, self._catch_up)

    def audit(self, principal: auth.Principal, action: str, results: list[dict[str, Any]]) -> None:
        hit = [int(m["item"]) for r in results for m in r["matches"]]
        found = sum(1 for r in results if r["matches"])
        self.activity.note(principal.org, action, principal.key_id, len(results), found, hit)

    def close(self) -> None:
        self.activity.close()
        self.head.close()


#: a request with at most this many queries may be answered on the event loop (see `match_now`).
INLINE_QUERIES = 64


def match(
    hub: Hub,
    principal: auth.Principal,
    queries: list[Any],
    radius: dict[str, float] | None = None,
    path: MatchPath | None = None,
) -> dict[str, Any]:
    """Match `queries`; with a serving process's `path`, grants come from its cache and the audit
    record from its tally (without one, both are read and written here, as a one-off caller wants)."""
    parsed = parse_queries(queries, hub.settings.max_match)
    if path is None:
        with db.read(hub.engine) as conn:
            readable = set(access.readable_lists(conn, principal))
        results = match_parsed(hub, parsed, readable, radius)
        found = sum(1 for r in results if r["matches"])
        audit.record_now(hub.engine, principal.org, "match", "", {"queries": len(parsed), "matched": found})
        return {"results": results}
    readable = path.grants.readable(principal)
    path.refresh()
    results = match_parsed(hub, parsed, readable, radius, refresh=False)
    path.audit(principal, "match", results)
    return {"results": results}


def match_now(
    path: MatchPath, principal: auth.Principal, queries: list[Any], radius: dict[str, float] | None = None
) -> dict[str, Any] | None:
    """The answer if it can be given from memory at once, else None (the caller then runs `match`
    in a thread). At once means: a few queries, no video (its shares read stored frames), grants
    remembered, nothing committed since the pool caught up, and the pool not busy. On the event
    loop this saves the thread hand-offs that cost more than the search itself."""
    if not isinstance(queries, list) or len(queries) > INLINE_QUERIES:
        return None
    readable = path.grants.cached(principal)
    if readable is None or not path.head.unchanged():
        return None
    parsed = parse_queries(queries, path.hub.settings.max_match)
    for query in parsed:
        if VpdqSignal.name in query:
            return None
    lock = path.hub.pool.lock
    if not lock.acquire(blocking=False):
        return None
    try:
        results = match_parsed(path.hub, parsed, readable, radius, refresh=False)
    finally:
        lock.release()
    path.audit(principal, "match", results)
    return {"results": results}


def match_parsed(
    hub: Hub,
    parsed: list[dict[str, str]],
    readable: AbstractSet[int],
    radius: dict[str, float] | None = None,
    *,
    refresh: bool = True,
) -> list[dict[str, Any]]:
    """Per query: its matches, best distance first (an item matched by two signals appears once).
    `refresh=False`: the caller has caught the pool up already."""
    by_signal: dict[str, tuple[list[int], list[str]]] = {}
    for i, query in enumerate(parsed):
        for name, value in query.items():
            group = by_signal.get(name)
            if group is None:
                group = by_signal[name] = ([], [])
            group[0].append(i)
            group[1].append(value)
    radii = {name: _radius(hub, signals.get(name), radius) for name in by_signal}
    best: list[dict[int, tuple[float, str]]] = [{} for _ in parsed]
    if refresh:
        hub.refresh()
    pool = hub.pool
    with pool.lock:
        for name, (query_ids, values) in by_signal.items():
            for q, (ids, dists) in zip(query_ids, pool.near(name, values, radii[name]), strict=True):
                if not len(ids):
                    continue  # most queries of a match request find nothing
                hits = best[q]
                for item_id, dist in _visible(pool, ids, dists, readable):
                    seen = hits.get(item_id)
                    if seen is None or dist < seen[0]:
                        hits[item_id] = (dist, name)
        results = [
            {
                "index": q,
                "matches": [
                    {"signal": name, "distance": dist, **pool.describe(item_id, readable)}
                    for item_id, (dist, name) in (
                        sorted(hits.items(), key=_best_first) if len(hits) > 1 else hits.items()
                    )
                ],
            }
            for q, hits in enumerate(best)
        ]
    if VpdqSignal.name in by_signal:
        _report_video_shares(hub, parsed, results)
    return results


def _best_first(hit: tuple[int, tuple[float, str]]) -> tuple[float, int]:
    """Order of a query's matches: smallest distance first, then lowest item id."""
    item_id, (dist, _name) = hit
    return dist, item_id


#: at most this many hits of one query are filtered item by item (numpy's set test costs tens of
#: microseconds whatever the size, several times a whole single-hash match's filtering in Python).
FEW_HITS = 16


def _visible(
    pool: Pool, ids: np.ndarray, dists: np.ndarray, readable: AbstractSet[int]
) -> list[tuple[int, Any]]:
    """(item id, distance) of the hits that are live and in a readable list."""
    if len(ids) > FEW_HITS:
        keep = pool.readable_live(ids, readable)
        return list(zip(ids[keep].tolist(), dists[keep].tolist(), strict=True))
    if not len(ids):
        return []
    in_list = pool.cols["list"]
    return [
        (item_id, dist)
        for item_id, dist in zip(ids.tolist(), dists.tolist(), strict=True)
        if pool.status(item_id) in LIVE and int(in_list[item_id]) in readable
    ]


def _report_video_shares(hub: Hub, parsed: list[dict[str, str]], results: list[dict[str, Any]]) -> None:
    """Add `query_share` and `listed_share` to video matches. The pool keeps only the frame index,
    so the few matched videos' stored frames are read back and both shares computed exactly."""
    hits = [(q, m) for q, r in enumerate(results) for m in r["matches"] if m["signal"] == VpdqSignal.name]
    if not hits:
        return
    with db.read(hub.engine) as conn:
        stored = fingerprints_of(conn, sorted({int(m["item"]) for _, m in hits}))
    for q, m in hits:
        listed = stored.get(int(m["item"]), {}).get(VpdqSignal.name)
        if listed is None:
            continue  # withdrawn or changed since the match: report the distance alone
        query_share, listed_share = shares(
            frame_codes(VpdqSignal.frames(parsed[q][VpdqSignal.name])), frame_codes(VpdqSignal.frames(listed))
        )
        m["query_share"], m["listed_share"] = round(query_share, 4), round(listed_share, 4)


class _PoolPdq:
    """The pool's PDQ items as `match_variants` searches them (codes in, hits per code out)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def search(self, codes: np.ndarray, radius: int) -> indexes.Hits:
        return self._pool.near(PdqSignal.name, [row.tobytes().hex() for row in codes], radius)


def _variant_matches(
    hub: Hub,
    variants: Sequence[Variant],
    options: VariantOptions,
    readable: AbstractSet[int],
    seen: set[str],
) -> list[dict[str, Any]]:
    """Items only the query variants found (what the untouched image matched stays "plain")."""
    from hashhub.variants import match_variants

    pool = hub.pool
    found = []
    with pool.lock:
        hits = match_variants(variants, _PoolPdq(pool), hub.settings.match_pdq_radius, options=options)
        for variant, ids, distances in hits:
            for item_id, distance in _visible(pool, ids, distances, readable):
                if str(item_id) not in seen:
                    described = pool.describe(item_id, readable)
                    found.append(
                        {"signal": PdqSignal.name, "distance": distance, "variant": variant, **described}
                    )
    return found


def variant_options(names: str | None) -> VariantOptions:
    """Query variants from a comma-separated list of names and groups (default: all)."""
    from hashhub.variants import VariantOptions

    try:
        return VariantOptions.from_names(names if names is not None else "all")
    except ValueError as exc:
        raise Invalid(f"variants: {exc}.") from None


def match_media(
    hub: Hub,
    principal: auth.Principal,
    data: bytes,
    options: VariantOptions | None = None,
    path: MatchPath | None = None,
) -> dict[str, Any]:
    """Hash an image or video held in memory (never written anywhere) and match its fingerprints;
    images also through the query variants in `options` (default: all)."""
    # Imported here: media decoding (Pillow, PyAV) is only needed once someone uploads media.
    from hashhub.detect import hash_media
    from hashhub.media.video import VideoLimits

    if not data:
        raise Invalid("The upload is empty; send the image or video bytes (raw body or multipart 'file').")
    options = options or variant_options(None)
    scanned = hash_media(data, options, video_limits=VideoLimits(max_bytes=hub.settings.max_upload_bytes))
    hashed = scanned.hashed
    if path is None:
        with db.read(hub.engine) as conn:
            readable: AbstractSet[int] = set(access.readable_lists(conn, principal))
    else:
        readable = path.grants.readable(principal)
        path.refresh()
    refresh = path is None
    parsed = [hashed.hashes] if hashed.hashes else []
    (matches,) = match_parsed(hub, parsed, readable, refresh=refresh) if parsed else [{"matches": []}]
    found = [{**m, "variant": PLAIN} for m in matches["matches"]]
    for video in scanned.video_variants:  # a video's trimmed frames: what only they matched
        (extra,) = match_parsed(hub, [video.hashes], readable)
        seen = {m["item"] for m in found}
        found += [{**m, "variant": video.name} for m in extra["matches"] if m["item"] not in seen]
    if scanned.variants:
        found += _variant_matches(hub, scanned.variants, options, readable, {m["item"] for m in found})
    if path is None:
        audit.record_now(hub.engine, principal.org, "match.media", "", {"matched": bool(found)})
    else:
        path.audit(principal, "match.media", [{"matches": found}])
    return {"hashes": hashed.hashes, "quality": hashed.quality, "error": hashed.error, "matches": found}
