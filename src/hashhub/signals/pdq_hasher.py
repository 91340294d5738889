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
    with _blas().limit(limits=1, user_api="blas"):
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


@lru_cache(maxsize=32)
def _axis_operator(length: int) -> np.ndarray:
    """The 64 x length matrix: box filter twice along one axis, then sample 64 points."""
    ahead, behind = _reach(length)
    positions = np.arange(length)
    lo = np.maximum(positions - behind, 0)  # box of output j: input[lo[j] .. hi[j]]
    hi = np.minimum(positions + ahead, length - 1)
    counts = (hi - lo + 1).astype(np.float64)
    samples = ((np.arange(_DECIMATED) + 0.5) * length / _DECIMATED).astype(np.int64)
    # First box pass, restricted to the sampled rows: row i averages input[lo[s_i] .. hi[s_i]].
    first = np.zeros((_DECIMATED, length), dtype=np.float64)
    for row, s in enumerate(samples):
        first[row, lo[s] : hi[s] + 1] = 1.0 / counts[s]
    # Second pass: (M @ B)[:, k] sums M[:, j] / count_j over the j whose box holds k, which are
    # exactly j in [k - ahead, k + behind]; a cumulative sum gives every column at once.
    cumulative = np.zeros((_DECIMATED, length + 1), dtype=np.float64)
    np.cumsum(first / counts, axis=1, out=cumulative[:, 1:])
    upper = np.minimum(positions + behind, length - 1) + 1
    lower = np.maximum(positions - ahead, 0)
    return _frozen(cumulative[:, upper] - cumulative[:, lower])


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
    with _blas().limit(limits=1, user_api="blas"):
        return (left @ image @ right.T).astype(np.float64)


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
    down = np.trunc((decimated[:-1, :] - decimated[1:, :]) * 100 / 255)
    across = np.trunc((decimated[:, :-1] - decimated[:, 1:]) * 100 / 255)
    total = int(np.abs(down).sum() + np.abs(across).sum())
    return min(total // _QUALITY_DIVISOR, 100)


def dct16(decimated: np.ndarray) -> np.ndarray:
    """The 16 x 16 low-frequency DCT coefficients of the 64 x 64 image."""
    dct = _dct_matrix()
    return dct @ decimated @ dct.T


def bits_to_hex(coefficients: np.ndarray) -> str:
    """One bit per coefficient (above the median), formatted as the reference does.

    The reference's median (Torben's) is the lower median: the 128th smallest of 256. Bit k = 16 i + j
    lives in 16-bit word k // 16, and words print from the last to the first, so the hex is the bits
    in reverse order, most significant first.
    """
    flat = coefficients.reshape(-1)
    median = np.partition(flat, flat.size // 2 - 1)[flat.size // 2 - 1]
    return np.packbits(flat[::-1] > median).tobytes().hex()


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
