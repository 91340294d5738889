"""Large-batch PDQ search through the chunk tables: the batch's probes and candidates in address order.

Query by query (`_kernels.multi_index_search`), every bucket probe and every candidate code read is
a cache miss at 10M rows. A large batch probes each bucket of a table many times (4,096 queries x
~120 probes a table over 32-64K buckets) and reads candidate codes spread over the whole code array.
Here, per slice of the batch and per table, the probes are counting-sorted by bucket so a table is
read in address order (each bucket's lines loaded once for all the queries that probe it), and the
candidate (query, row) pairs (one int64 each: row << 25 | query << 4 | table) are radix-sorted by
groups of 64 rows (2 KB of codes) so the code reads are one forward pass. Same pigeonhole and owner
rule as the per-query kernel, so the answers are the same rows. The kernel is C (`_native`).
"""

from __future__ import annotations

from hashhub.index import _native
from hashhub.index._kernels import Triple, as_arrays

# Queries one call takes at most (a candidate carries its query in 16 bits).
MAX_SLICE = _native.MAX_SLICE


def sweep_search(*args: object) -> Triple:
    """Exact radius search of up to MAX_SLICE queries at once; arguments and results as
    `_kernels.multi_index_search` (query row, stored row, distance), in row order."""
    return as_arrays(_native.sweep_search(*args))
