"""Turn kernel output (query row, id, distance runs) into the per-query pairs every index returns."""

from __future__ import annotations

import numpy as np

Match = tuple[np.ndarray, np.ndarray]


def group_matches(
    nq: int, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], distance_dtype: type = np.int32
) -> list[Match]:
    """Per query row: (ids, distances), nearest first and ties by id, from (query, id, distance) runs."""
    parts = [p for p in parts if p[0].shape[0]]
    if not parts:
        none_ids, none_d = np.empty(0, np.int64), np.empty(0, distance_dtype)
        return [(none_ids, none_d) for _ in range(nq)]
    q, ids, d = (np.concatenate(x) for x in zip(*parts, strict=True)) if len(parts) > 1 else parts[0]
    order = np.lexsort((ids, d, q))
    q, ids, d = q[order], ids[order], d[order]
    bounds = np.searchsorted(q, np.arange(nq + 1)).tolist()
    return [(ids[bounds[i] : bounds[i + 1]], d[bounds[i] : bounds[i + 1]]) for i in range(nq)]
