"""Match fingerprints against the pool: exact for crypto and opaque types, PDQ by Hamming radius,
PDNA by Euclidean distance. Answers from the in-memory pool after catching it up to the committed
head; only lists the caller may read take part, in the matches and in the cluster facts alike.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hashhub import db, signals
from hashhub.hub import access, audit, auth
from hashhub.hub.core import Hub
from hashhub.hub.errors import Invalid

MAX_RADIUS = {"exact": 0.0, "hamming": 64.0, "vector": 1e9}


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
    return results


def match_media(hub: Hub, principal: auth.Principal, data: bytes) -> dict[str, Any]:
    """Hash an image held in memory (never written anywhere) and match its fingerprints."""
    from hashhub.hashing import hash_bytes

    if not data:
        raise Invalid("The request body is empty; send the image bytes as the body.")
    hashed = hash_bytes(data)
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
