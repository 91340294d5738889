"""Many PDQ decimations of one image at once: what query variants (`hashhub.variants`) need.

PDQ's first steps are one 64 x H matrix per axis (`pdq_hasher.decimate`). A flipped image is the
same image decimated with an axis's matrix reversed; an image with a margin restored by repeating
its edge pixels is the same image decimated with an edge-padded matrix folded back onto it. So the
flips and crop pads of a scan are all decimations of ONE array with different matrices, and none
needs a flipped, shrunk or padded copy of the pixels.

Those matrices are banded: row i only weighs the pixels near sample i, a window of ~2 x length/128
(5 pixels on a 300 px side, ~12 on a reduced phone photo). `decimate_many` therefore multiplies by
bands rather than dense matrices, in two small compiled loops (numba, cached like the index's
kernels): per row operator, a handful of whole-row multiply-adds; per (rows, columns) pair, 64 x 64
short dot products. On a 300 x 225 image that is ~50x less arithmetic than the dense products, and
no BLAS call (whose threading needs taming per call).

Results equal the dense products up to float32 rounding order (a bit of the hash, rarely); the plain
hash stays `pdq_hasher.hash_luma`, which the conformance tests pin to Meta's C++ output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numba import njit

from hashhub.signals.pdq_hasher import _folded_operator, _frozen

_DECIMATED = 64


@dataclass(frozen=True, eq=False)
class AxisOperator:
    """One axis's 64 x length decimation matrix and where each row's weights lie.

    `first[i]`: the first column row i weighs; `width`: the widest row's span. Cached and shared:
    treat as read-only.
    """

    matrix: np.ndarray
    first: np.ndarray
    width: int
    _bands: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def length(self) -> int:
        return self.matrix.shape[1]

    def band(self, taps: int) -> tuple[np.ndarray, np.ndarray]:
        """(starts (64,), weights (64, taps)): row i is weights[i] applied to columns
        starts[i] .. starts[i] + taps - 1; `taps` >= `width` (wider bands carry zeros)."""
        taps = min(taps, self.length)
        if taps not in self._bands:  # a scan asks for one or two widths per operator: keep them
            starts = np.minimum(self.first, self.length - taps)
            weights = self.matrix[np.arange(_DECIMATED)[:, None], starts[:, None] + np.arange(taps)]
            self._bands[taps] = (starts, weights)
        return self._bands[taps]


def axis_operator(full_length: int, length: int, pad: int = 0, *, reverse: bool = False) -> AxisOperator:
    """The operator `pdq_hasher.decimate` applies along an axis of `length` pixels (`full_length`:
    that axis's size before a reduced decode).

    `pad` > 0: for the line edge-padded by `pad` pixels on both sides (its first and last pixel
    repeated), folded back onto the unpadded line. `reverse`: for the line reversed.
    """
    return _operator(full_length, length, max(pad, 0), reverse)


@lru_cache(maxsize=512)
def _operator(full_length: int, length: int, pad: int, reverse: bool) -> AxisOperator:
    if reverse:
        matrix = _frozen(_operator(full_length, length, pad, False).matrix[:, ::-1])
    elif pad:
        factor = max(round(full_length / length), 1)
        wide = _folded_operator(full_length + 2 * pad * factor, length + 2 * pad)
        folded = np.array(wide[:, pad : pad + length], dtype=np.float32)
        # The repeated edge pixels ARE the first and last pixel: their weights add to those.
        folded[:, 0] += wide[:, :pad].sum(axis=1)
        folded[:, -1] += wide[:, pad + length :].sum(axis=1)
        matrix = _frozen(folded)
    else:
        matrix = _folded_operator(full_length, length)
    weighed = matrix != 0
    first = np.argmax(weighed, axis=1)
    last = length - np.argmax(weighed[:, ::-1], axis=1)
    return AxisOperator(matrix, first, int((last - first).max()))


def decimate_many(luma: np.ndarray, operators: Sequence[tuple[AxisOperator, AxisOperator]]) -> np.ndarray:
    """`rows.matrix @ luma @ columns.matrix.T` for each (rows, columns) pair, as a (k, 64, 64)
    float64 stack. Each distinct row operator passes over the image once, whatever pairs use it."""
    image = np.asarray(luma, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D luminance array, got shape {image.shape}")
    distinct_rows = list({id(rows): rows for rows, _ in operators}.values())
    position = {id(rows): n * _DECIMATED for n, rows in enumerate(distinct_rows)}
    taps = max(op.width for op in distinct_rows)
    bands = [op.band(taps) for op in distinct_rows]
    reduced = np.zeros((len(bands) * _DECIMATED, image.shape[1]), dtype=np.float32)
    _rows_pass(image, np.concatenate([b[0] for b in bands]), np.concatenate([b[1] for b in bands]), reduced)
    taps = max(cols.width for _, cols in operators)
    columns = [cols.band(taps) for _, cols in operators]
    out = np.empty((len(operators), _DECIMATED, _DECIMATED), dtype=np.float64)
    _columns_pass(
        reduced,
        np.array([position[id(rows)] for rows, _ in operators], dtype=np.int64),
        np.stack([c[0] for c in columns]),
        np.stack([c[1] for c in columns]),
        out,
    )
    return out


@njit(cache=True, nogil=True)
def _rows_pass(image: np.ndarray, starts: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
    """out[r] += weights[r, t] * image[starts[r] + t] for every tap t: whole image rows at a time."""
    width = image.shape[1]
    for r in range(weights.shape[0]):
        for t in range(weights.shape[1]):
            weight = weights[r, t]
            if weight != 0.0:
                row = starts[r] + t
                for x in range(width):
                    out[r, x] += weight * image[row, x]


@njit(cache=True, nogil=True)
def _columns_pass(
    reduced: np.ndarray, bases: np.ndarray, starts: np.ndarray, weights: np.ndarray, out: np.ndarray
) -> None:
    """out[n, i, j] = the band of columns starts[n, j].. of reduced row bases[n] + i, weighed."""
    for n in range(out.shape[0]):
        for i in range(out.shape[1]):
            line = reduced[bases[n] + i]
            for j in range(out.shape[2]):
                total = 0.0
                first = starts[n, j]
                for t in range(weights.shape[2]):
                    total += weights[n, j, t] * line[first + t]
                out[n, i, j] = total
