"""Meta's PDQ algorithm on a luminance array, in numpy.

The reference (Meta's `pdqhashing.cpp`) runs, on a float luminance image of H x W pixels:

1. two passes of a box filter along each axis ("Jarosz filter"), the window being
   ceil(length / 128) pixels;
2. decimation to 64 x 64 by taking the pixel at ((i + 0.5) * length / 64) on each axis;
3. a quality score from the sum of the 64 x 64 image's gradients;
4. a 16 x 16 DCT (the 16 lowest non-DC frequencies of a 64-point DCT-II) and one bit per coefficient,
   set when it is above the median.

Steps 1 and 2 are linear and separable, so here they are one matrix per axis: `R` (64 x H) and `C`
(64 x W), each "sample 64 points of a twice box-filtered line", and the 64 x 64 image is
`R @ luma @ C.T`. That costs two matrix products (BLAS) instead of four passes over every pixel, and
the matrices depend only on the image's size, so they are cached. Results equal the reference up to
float rounding (the C++ code keeps running float32 sums): a bit or two on some images.

Flips and quarter turns of the image permute and negate DCT coefficients, so `dihedral_hashes` gives
the 8 rotation/flip variants from one DCT, as the reference's `pdqDihedralFloat256FromFloatLuma` does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from threadpoolctl import ThreadpoolController

#: ITU-R BT.601 luma weights, as the reference uses them.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: Images smaller than this on either side cannot be hashed (the reference gives quality 0).
MIN_DIMENSION = 5
_DECIMATED = 64
_DCT_SIZE = 16
# The reference's window: ceil(length / (2 * 64)), computed with integer arithmetic.
_WINDOW_DIVISOR = 2 * _DECIMATED
# Quality: sum of |gradient| scaled to percent of full range, divided by this, capped at 100.
_QUALITY_DIVISOR = 90


@dataclass(frozen=True, slots=True)
class PdqResult:
    """A PDQ hash as 64 lowercase hex characters, with its quality 0-100."""

    hash: str
    quality: int


#: The 8 dihedral variants, in the order and under the names the reference uses.
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


def luma_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """Float32 luminance (0-255) of an H x W x 3 uint8 (or float) RGB array."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB array, got shape {rgb.shape}")
    with one_blas_thread():
        return np.tensordot(rgb, LUMA_WEIGHTS, axes=1).astype(np.float32, copy=False)


def _window(length: int) -> int:
    return (length + _WINDOW_DIVISOR - 1) // _WINDOW_DIVISOR


def _reach(length: int) -> tuple[int, int]:
    """How far the reference's box filter (`box1DFloat`) reaches (ahead, behind) of each sample.

    A window of w samples reaches (w + 2) // 2 - 1 samples ahead and the rest behind, and
    shrinks at the edges.
    """
    full = _window(length)
    ahead = (full + 2) // 2 - 1
    return ahead, full - 1 - ahead


@lru_cache(maxsize=256)
def _axis_operator(length: int) -> np.ndarray:
    """The 64 x length matrix: box filter twice along one axis, then sample 64 points.

    Only the pixels near each of the 64 samples carry weight, so the matrix is summed from those
    (64 x window^2 terms) rather than built densely: crops and uploads of new sizes miss the cache
    all the time, and this keeps a miss at tens of microseconds.
    """
    ahead, behind = _reach(length)
    window = ahead + behind + 1
    positions = np.arange(length)
    lo = np.maximum(positions - behind, 0)  # box of output j: input[lo[j] .. hi[j]]
    hi = np.minimum(positions + ahead, length - 1)
    counts = (hi - lo + 1).astype(np.float64)
    samples = ((np.arange(_DECIMATED) + 0.5) * length / _DECIMATED).astype(np.int64)
    # Sample i averages pixels j in box(s_i) (first pass); each such j averages pixels k in
    # box(j) (second pass): k gets 1 / (count(s_i) * count(j)) from every such j.
    steps = np.arange(window)
    j = lo[samples][:, None, None] + steps[None, :, None]
    j_valid = j <= hi[samples][:, None, None]
    j = np.minimum(j, length - 1)
    k = lo[j] + steps[None, None, :]
    valid = j_valid & (k <= hi[j])
    weights = valid / (counts[samples][:, None, None] * counts[j])
    flat = np.arange(_DECIMATED)[:, None, None] * length + np.minimum(k, length - 1)
    summed = np.bincount(flat.ravel(), weights.ravel(), minlength=_DECIMATED * length)
    return _frozen(summed.reshape(_DECIMATED, length))


def _frozen(operator: np.ndarray) -> np.ndarray:
    """Contiguous float32, read-only: cached operators are shared by every caller."""
    result = np.ascontiguousarray(operator, dtype=np.float32)
    result.flags.writeable = False
    return result


@cache
def _dct_matrix() -> np.ndarray:
    """16 x 64: rows are DCT-II basis vectors 1..16 (the DC term is skipped), scaled sqrt(2/64)."""
    i = np.arange(1, _DCT_SIZE + 1)[:, None]
    j = np.arange(_DECIMATED)[None, :]
    matrix = np.sqrt(2.0 / _DECIMATED) * np.cos(np.pi / (2 * _DECIMATED) * i * (2 * j + 1))
    matrix.flags.writeable = False
    return matrix


@lru_cache(maxsize=32)
def _folded_operator(full_length: int, length: int) -> np.ndarray:
    """The full-size operator for an axis the decoder shrank by an integer factor.

    A JPEG decoded at 1/s scale (or an image box-reduced by s) holds, per pixel, about the mean of
    s full-size pixels. Summing the full-size operator's weights over each such group applies the
    reference's filter at full size to those means, which stays within a few bits of the full-size
    hash where hashing the small image as if it were the original (a different filter) does not.
    """
    factor = max(round(full_length / length), 1)
    if factor == 1 or -(-full_length // factor) != length:
        return _axis_operator(length)
    padded = np.zeros((_DECIMATED, length * factor), dtype=np.float32)
    padded[:, :full_length] = _axis_operator(full_length)
    return _frozen(padded.reshape(_DECIMATED, length, factor).sum(axis=2))


def decimate(luma: np.ndarray, full_shape: tuple[int, int] | None = None) -> np.ndarray:
    """The 64 x 64 float image the reference hashes: box-filtered twice per axis, then sampled.

    `full_shape` (rows, columns): the size the image had before it was decoded or reduced by an
    integer factor; the filter is then the one the reference would apply at that size.
    """
    rows, cols = luma.shape
    full_rows, full_cols = full_shape or (rows, cols)
    image = np.asarray(luma, dtype=np.float32)
    left = _folded_operator(full_rows, rows)
    right = _folded_operator(full_cols, cols)
    with one_blas_thread():
        return (left @ image @ right.T).astype(np.float64)


_inside = threading.local()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the enclosed matrix products on one BLAS thread (see `_blas`); re-entrant and cheap
    when nested, so a scan that hashes many variants pays for the switch once, not per product."""
    if getattr(_inside, "depth", 0):
        _inside.depth += 1
        try:
            yield
        finally:
            _inside.depth -= 1
        return
    _inside.depth = 1
    try:
        with _blas().limit(limits=1, user_api="blas"):
            yield
    finally:
        _inside.depth = 0


@cache
def _blas() -> ThreadpoolController:
    """BLAS thread control, found once per process (finding it costs ~10 ms).

    These products take a few milliseconds on one core. Left to its default, OpenBLAS starts a
    thread per core for each and spins them; with one hashing process per core (or other work on
    the machine) that made hashing 10 to 50 times slower in measurement. Hashing is parallel across
    files instead. Limits are restored on exit; concurrent threads can only cost speed, not results.
    """
    return ThreadpoolController()


def quality(decimated: np.ndarray) -> int:
    """The reference's quality metric: summed |gradient| in percent of 255, / 90, capped at 100."""
    return qualities(decimated[None])[0]


def qualities(stack: np.ndarray) -> list[int]:
    """`quality` of each 64 x 64 image in a (k, 64, 64) stack."""
    down = np.trunc((stack[:, :-1, :] - stack[:, 1:, :]) * 100 / 255)
    across = np.trunc((stack[:, :, :-1] - stack[:, :, 1:]) * 100 / 255)
    totals = np.abs(down).sum(axis=(1, 2)) + np.abs(across).sum(axis=(1, 2))
    return [min(int(total) // _QUALITY_DIVISOR, 100) for total in totals]


def dct16(decimated: np.ndarray) -> np.ndarray:
    """The 16 x 16 low-frequency DCT coefficients of the 64 x 64 image (or of each in a stack)."""
    dct = _dct_matrix()
    return dct @ decimated @ dct.T


def bits_to_hex(coefficients: np.ndarray) -> str:
    """One bit per coefficient (above the median), formatted as the reference does.

    The reference's median (Torben's) is the lower median: the 128th smallest of 256. Bit k = 16 i + j
    lives in 16-bit word k // 16, and words print from the last to the first, so the hex is the bits
    in reverse order, most significant first.
    """
    return hex_hashes(coefficients[None])[0]


def hex_hashes(stack: np.ndarray) -> list[str]:
    """`bits_to_hex` of each 16 x 16 coefficient block in a (k, 16, 16) stack."""
    flat = stack.reshape(stack.shape[0], -1)
    middle = flat.shape[1] // 2 - 1
    median = np.partition(flat, middle, axis=1)[:, middle : middle + 1]
    text = np.packbits(flat[:, ::-1] > median, axis=1).tobytes().hex()
    return [text[i : i + 64] for i in range(0, len(text), 64)]


def _too_small(luma: np.ndarray) -> bool:
    return min(luma.shape) < MIN_DIMENSION


def _check(luma: np.ndarray) -> np.ndarray:
    array = np.asarray(luma)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D luminance array, got shape {array.shape}")
    return array


def hash_luma(luma: np.ndarray, full_shape: tuple[int, int] | None = None) -> PdqResult:
    """PDQ hash and quality of a 2-D luminance array (values 0-255).

    `full_shape`: see `decimate`; give it when `luma` is a reduced decode of a larger image.
    """
    luma = _check(luma)
    if _too_small(luma):
        return PdqResult("0" * 64, 0)
    decimated = decimate(luma, full_shape)
    return PdqResult(bits_to_hex(dct16(decimated)), quality(decimated))


def dihedral_hashes(luma: np.ndarray, full_shape: tuple[int, int] | None = None) -> dict[str, PdqResult]:
    """The hashes of the image's 8 rotations and flips (names: `DIHEDRAL_NAMES`), from one DCT.

    Reversing the pixel order along an axis multiplies the DCT coefficient of frequency u by
    (-1)^u (our row i holds frequency i + 1), and transposing the image transposes the coefficients.
    """
    luma = _check(luma)
    if _too_small(luma):
        return {name: PdqResult("0" * 64, 0) for name in DIHEDRAL_NAMES}
    decimated = decimate(luma, full_shape)
    score = quality(decimated)
    b = dct16(decimated)
    odd = np.where(np.arange(_DCT_SIZE) % 2 == 0, -1.0, 1.0)  # frequencies 1, 3, 5... flip sign
    flip_rows = odd[:, None]  # reverse top-bottom
    flip_cols = odd[None, :]  # reverse left-right
    variants = {
        "original": b,
        "rotate90": (b * flip_cols).T,
        "rotate180": b * flip_rows * flip_cols,
        "rotate270": (b * flip_rows).T,
        # Meta's names: "flipx" mirrors about the x axis (top-bottom), "flipy" about the y axis.
        "flipx": b * flip_rows,
        "flipy": b * flip_cols,
        "flip_plus1": b.T,
        "flip_minus1": (b * flip_rows * flip_cols).T,
    }
    return {name: PdqResult(bits_to_hex(variants[name]), score) for name in DIHEDRAL_NAMES}
