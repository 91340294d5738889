"""Match fingerprints against the pool: exact for crypto and opaque types, PDQ by Hamming radius,
PDNA by Euclidean distance, vPDQ videos by the share of frames matched (a video match's distance is
1 - its query share, and it reports both shares). Answers from the in-memory pool after catching
it up to the committed head; only lists the caller may read take part, in the matches and in the
cluster facts alike.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from hashhub import db, signals
from hashhub.hub import access, audit, auth
from hashhub.hub.core import Hub
from hashhub.hub.errors import Invalid
from hashhub.hub.pool import fingerprints_of
from hashhub.signals.vpdq import VpdqSignal, frame_codes, shares

#: vPDQ's radius is the share of the query's frames allowed to go unmatched (default 0.2).
if TYPE_CHECKING:
    from hashhub.hashing import FileHashes

VIDEO_DIGESTS = ("md5", "sha1", "sha256")
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


def match(
    hub: Hub, principal: auth.Principal, queries: list[Any], radius: dict[str, float] | None = None
) -> dict[str, Any]:
    parsed = parse_queries(queries, hub.settings.max_match)
    with db.read(hub.engine) as conn:
        readable = set(access.readable_lists(conn, principal))
    results = match_parsed(hub, parsed, readable, radius)
    found = sum(1 for r in results if r["matches"])
    audit.record_now(hub.engine, principal.org, "match", "", {"queries": len(parsed), "matched": found})
    return {"results": results}


def match_parsed(
    hub: Hub, parsed: list[dict[str, str]], readable: set[int], radius: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """Per query: its matches, best distance first (an item matched by two signals appears once)."""
    by_signal: dict[str, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
    for i, query in enumerate(parsed):
        for name, value in query.items():
            by_signal[name][0].append(i)
            by_signal[name][1].append(value)
    radii = {name: _radius(hub, signals.get(name), radius) for name in by_signal}
    best: list[dict[int, tuple[float, str]]] = [{} for _ in parsed]
    hub.refresh()
    pool = hub.pool
    with pool.lock:
        for name, (query_ids, values) in by_signal.items():
            for q, (ids, dists) in zip(query_ids, pool.near(name, values, radii[name]), strict=True):
                if not len(ids):
                    continue
                keep = pool.readable_live(ids, readable)
                for item_id, dist in zip(ids[keep].tolist(), dists[keep].tolist(), strict=True):
                    seen = best[q].get(item_id)
                    if seen is None or dist < seen[0]:
                        best[q][item_id] = (dist, name)
        results = []
        for q, hits in enumerate(best):
            matches = []
            for item_id, (dist, name) in sorted(hits.items(), key=lambda kv: (kv[1][0], kv[0])):
                matches.append({"signal": name, "distance": dist, **pool.describe(item_id, readable)})
            results.append({"index": q, "matches": matches})
    _report_video_shares(hub, parsed, results)
    return results


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


def _hash_media(hub: Hub, data: bytes) -> FileHashes:
    """Digests plus PDQ for an image, or plus vPDQ (within the hub's upload limit) for a video."""
    # Imported here: media decoding (Pillow, PyAV) is only needed once someone uploads media.
    from hashhub.hashing import hash_bytes
    from hashhub.media import MediaError
    from hashhub.media.video import VideoLimits, is_video

    if not is_video(data):
        return hash_bytes(data)
    hashed = hash_bytes(data, VIDEO_DIGESTS)
    try:
        video = VpdqSignal.hash_video(data, limits=VideoLimits(max_bytes=hub.settings.max_upload_bytes))
    except MediaError as exc:
        hashed.error = str(exc)
        return hashed
    hashed.quality[video.signal] = video.quality
    if video.value is not None:
        hashed.hashes[video.signal] = video.value
    return hashed


def match_media(hub: Hub, principal: auth.Principal, data: bytes) -> dict[str, Any]:
    """Hash an image or video held in memory (never written anywhere) and match its fingerprints."""
    if not data:
        raise Invalid("The upload is empty; send the image or video bytes (raw body or multipart 'file').")
    hashed = _hash_media(hub, data)
    with db.read(hub.engine) as conn:
        readable = set(access.readable_lists(conn, principal))
    (matches,) = match_parsed(hub, [hashed.hashes], readable) if hashed.hashes else [{"matches": []}]
    audit.record_now(hub.engine, principal.org, "match.media", "", {"matched": bool(matches["matches"])})
    return {
        "hashes": hashed.hashes,
        "quality": hashed.quality,
        "error": hashed.error,
        "matches": matches["matches"],
    }
