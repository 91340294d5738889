"""The 8 rotations and flips of a PDQ code, from its 256 bits alone (an approximation), and how a
dihedral search folds the 8 variants' matches into one answer per query.

A PDQ bit says "this 16 x 16 DCT coefficient is above the median". Mirroring the image negates the
coefficients of odd frequency along that axis and transposing it transposes them (see
`hashhub.signals.pdq_hasher.dihedral_hashes`, which does it exactly from the pixels). From the bits,
a negated coefficient is taken to flip its bit, which is exact only when the median is 0: coefficients
close to the median may land on the other side. `tests/test_index_pdq_dihedral.py` measures how far
these variants are from the pixel ones on the corpus photos (README, index section).
"""

from __future__ import annotations

from functools import cache
from itertools import pairwise

import numpy as np

#: Variant names and order, as `hashhub.signals.pdq_hasher.DIHEDRAL_NAMES` and Meta's reference.
DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)
_SIDE = 16


@cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """(8, 256) source bit and xor mask per variant, over the code's bits as `np.unpackbits` lists them.

    The hex (and so the code bytes) lists coefficient k = 16 i + j (row i: vertical frequency i + 1) at
    bit position 255 - k, most significant first.
    """
    grid = np.arange(_SIDE * _SIDE).reshape(_SIDE, _SIDE)  # coefficient index at (i, j)
    odd = np.arange(_SIDE) % 2 == 0  # frequency i + 1 is odd: negated by a mirror along the axis
    rows, cols = np.broadcast_to(odd[:, None], grid.shape), np.broadcast_to(odd[None, :], grid.shape)
    none = np.zeros(grid.shape, bool)
    # (negate, transpose) for each variant, as pdq_hasher.dihedral_hashes builds them.
    ops = {
        "original": (none, False),
        "rotate90": (cols, True),
        "rotate180": (rows ^ cols, False),
        "rotate270": (rows, True),
        "flipx": (rows, False),
        "flipy": (cols, False),
        "flip_plus1": (none, True),
        "flip_minus1": (rows ^ cols, True),
    }
    sources = np.empty((len(DIHEDRAL_NAMES), 256), np.int64)
    flips = np.empty((len(DIHEDRAL_NAMES), 256), bool)
    for v, name in enumerate(DIHEDRAL_NAMES):
        negate, transpose = ops[name]
        src, neg = (grid.T, negate.T) if transpose else (grid, negate)
        # Output coefficient (i, j) comes from src[i, j]; positions are 255 - coefficient.
        sources[v] = (255 - src.reshape(-1))[::-1]
        flips[v] = neg.reshape(-1)[::-1]
    return sources, flips


def variants(codes: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 codes -> (n, 8, 32): each code's 8 dihedral variants, in DIHEDRAL_NAMES order."""
    sources, flips = _tables()
    bits = np.unpackbits(codes, axis=1)  # (n, 256)
    out = bits[:, sources] ^ flips[None, :, :]  # (n, 8, 256)
    return np.packbits(out, axis=2)


def fold(
    nq: int, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per query: (ids, distances, variant numbers), each id once with its nearest variant (the first
    in DIHEDRAL_NAMES order on a tie), nearest first and ties by id. `parts` are (query, id, distance,
    variant) runs."""
    parts = [p for p in parts if p[0].shape[0]]
    if not parts:
        empty = (np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int8))
        return [empty for _ in range(nq)]
    q, ids, d, v = (np.concatenate(x) for x in zip(*parts, strict=True))
    order = np.lexsort((v, d, ids, q))
    q, ids, d, v = q[order], ids[order], d[order], v[order]
    first = np.ones(q.shape[0], bool)
    first[1:] = (q[1:] != q[:-1]) | (ids[1:] != ids[:-1])
    q, ids, d, v = q[first], ids[first], d[first], v[first]
    order = np.lexsort((ids, d, q))
    q, ids, d, v = q[order], ids[order], d[order], v[order]
    bounds = np.searchsorted(q, np.arange(nq + 1)).tolist()
    return [(ids[a:b], d[a:b], v[a:b]) for a, b in pairwise(bounds)]
