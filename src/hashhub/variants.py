"""Query variants of an image's PDQ: find listed images behind borders, mirrors, rotations and crops.

PDQ compares one hash per image, so trivial edits evade it: a border, letterboxing, a mirror image
or a quarter turn move the hash by ~100 bits. Instead of asking contributors for more hashes, the
scanner hashes a few versions of the upload that undo the likely edit and queries them all:

    from hashhub.variants import query_variants, match_variants, VariantOptions
    variants = query_variants(image)            # PIL image (a reduced decode is fine), or a numpy array
    variants[0]                                 # Variant("plain", pdq, quality): the untouched image
    for name, ids, distances in match_variants(variants, pdq_index):
        ...                                     # each listed id once, under the variant that found it

Variant names (what a match reports, and what `VariantOptions` and the policy file refer to):

    plain                 the untouched image; computed first, always present
    trimmed               uniform margins removed (borders, letterbox, pillarbox; see media.trim)
    mirror, flipv         the upload is the listed image flipped left-right / top-bottom
    rot90, rot180, rot270 the upload is the listed image turned clockwise by that many degrees
    transpose, transverse the upload is mirrored about its main / other diagonal
    pad3, pad6            the upload is the listed image with N% of its width and height cropped off
                          (N/2 % a side); the variant restores the lost margin from the edge pixels

Cost: the plain hash reads the decoded image at the size the decoder gave; every other variant is
computed from one copy of it box-reduced to about `WORK_SIDE` pixels on its shorter side, where a
PDQ takes a fraction of a millisecond. Flips need the flipped pixels decimated (PDQ samples its 64
points asymmetrically, so permuting the DCT of the unflipped image, as Meta's `dihedral` helpers
do, is 5-18 bits off and loses matches), but only along the two axes: the four axis-flip
combinations are four decimations of the small copy, and the transposed four are those transposed.
A flip is a decimation with an axis's filter reversed and a crop pad one with an edge-padded
filter, so flips and pads together are one batched pass over the copy (`pdq_hasher.decimate_many`),
then one DCT for the whole stack; the filters are cached per size.

False matches: every extra query is another chance to hit an unrelated listed image, so variants
match within their own radius (`DEFAULT_RADII`, chosen by measuring every corpus photo's variants
against all other photos; see benchmarks/detection.py and the README).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from PIL import Image

from hashhub.media.image import FULL_SIZE_KEY
from hashhub.signals import pdq_hasher
from hashhub.signals.pdq import MATCH_THRESHOLD, MIN_QUALITY

if TYPE_CHECKING:
    from hashhub.signals import pdq_batch

PLAIN = "plain"
TRIMMED = "trimmed"
#: name -> (flip rows, flip columns, transpose) applied to the upload to undo the edit. Turning the
#: listed image clockwise by 90 degrees is undone by reversing the upload's columns and transposing.
DIHEDRAL: dict[str, tuple[bool, bool, bool]] = {
    "mirror": (False, True, False),
    "flipv": (True, False, False),
    "rot180": (True, True, False),
    "rot90": (False, True, True),
    "rot270": (True, False, True),
    "transpose": (False, False, True),
    "transverse": (True, True, True),
}
#: name -> share of width and height cropped off (half a side) that the variant restores.
CROPS: dict[str, float] = {"pad3": 0.03, "pad6": 0.06}
#: Every variant name, in the order variants are computed, reported and preferred on ties.
VARIANT_NAMES: tuple[str, ...] = (PLAIN, TRIMMED, *DIHEDRAL, *CROPS)
#: Names the policy file may use for several variants at once.
GROUPS: dict[str, tuple[str, ...]] = {
    "all": VARIANT_NAMES[1:],
    "none": (),
    "borders": (TRIMMED,),
    "mirrors": ("mirror", "flipv", "transpose", "transverse"),
    "rotations": ("rot90", "rot180", "rot270"),
    "dihedral": tuple(DIHEDRAL),
    "crops": tuple(CROPS),
}
#: Hamming radius per non-plain variant (plain keeps PDQ's 31), chosen by measurement on the corpus
#: (benchmarks/detection.py): below the nearest UNRELATED photo each kind reached and above what
#: the edits need. Trimmed: an object on a plain background trimmed to its outline looks like other
#: such objects (nearest unrelated photo at 22), while a correct trim lands within a few bits.
#: Crop pads: an edge-filled margin is a guess, so true matches spread to ~28 (nearest unrelated
#: at 32). Flips and turns: computed exactly, nearest unrelated photo at 58.
DEFAULT_RADII: Mapping[str, int] = MappingProxyType(
    {TRIMMED: 20, **dict.fromkeys(DIHEDRAL, MATCH_THRESHOLD), **dict.fromkeys(CROPS, 28)}
)
#: Shorter side of the reduced copy variants are computed from. With the full-size filter folded
#: on (see `_Work`), flips of a 256 px copy are within 2 bits of the full-size hash; a 128 px copy
#: was measured 6 bits off, which the tight `trimmed` radius cannot spare.
WORK_SIDE = 256


@dataclass(frozen=True, slots=True)
class Variant:
    """One query: a PDQ hash (64 hex) of a version of the upload, and its quality 0-100."""

    name: str
    pdq: str
    quality: int


@dataclass(frozen=True)
class VariantOptions:
    """Which variants to compute and match, and how close each non-plain variant must be.

    `enabled` holds variant names (`VARIANT_NAMES`); "plain" is always computed whatever it says.
    `radii` overrides `DEFAULT_RADII` per variant name. Build one from the policy's words with
    `VariantOptions.from_names(["borders", "mirror", ...])`.
    """

    enabled: frozenset[str] = field(default_factory=lambda: frozenset(VARIANT_NAMES))
    radii: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_names(self.enabled)
        _check_names(self.radii)
        for name, radius in self.radii.items():
            if isinstance(radius, bool) or not isinstance(radius, int) or not 0 <= radius <= 256:
                raise ValueError(f"radius for variant {name!r} must be an integer 0-256, got {radius!r}")

    @classmethod
    def from_names(cls, names: Iterable[str], *, radii: Mapping[str, int] | None = None) -> VariantOptions:
        """Options from variant names and group names ("all", "none", "borders", "mirrors",
        "rotations", "dihedral", "crops"), case-insensitive; raises ValueError naming a bad one."""
        if isinstance(names, str):
            names = names.split(",")
        chosen = {PLAIN}
        for raw in names:
            name = raw.strip().lower()
            if name:
                chosen.update(GROUPS.get(name, (name,)))
        return cls(frozenset(chosen), dict(radii or {}))

    def wants(self, name: str) -> bool:
        return name == PLAIN or name in self.enabled

    def radius(self, name: str, plain: int = MATCH_THRESHOLD) -> int:
        """The Hamming radius a match through variant `name` must be within."""
        if name == PLAIN:
            return plain
        return self.radii.get(name, DEFAULT_RADII[name])


def _check_names(names: Iterable[str]) -> None:
    unknown = set(names) - set(VARIANT_NAMES)
    if unknown:
        raise ValueError(
            f"unknown variant name(s) {', '.join(sorted(unknown))}; choose from "
            f"{', '.join(VARIANT_NAMES)} or the groups {', '.join(GROUPS)}"
        )


PLAIN_ONLY = VariantOptions(frozenset({PLAIN}))


class VariantMatch(NamedTuple):
    """The listed ids one variant found (those no earlier or closer variant found), nearest first."""

    variant: str
    ids: np.ndarray
    distances: np.ndarray


Source = Image.Image | np.ndarray


def query_variants(
    source: Source,
    *,
    options: VariantOptions | None = None,
    full_shape: tuple[int, int] | None = None,
) -> list[Variant]:
    """The plain PDQ of `source`, then each enabled variant's, in `VARIANT_NAMES` order.

    `source`: a PIL image ("L" or any colour mode; a reduced decode carries its full size in
    `image.info`, see `media.open_image`), a 2-D luma array (0-255) or an H x W x 3 RGB array.
    `full_shape` (rows, columns): the image's size before a reduced decode, for arrays.
    "trimmed" is only present when the image had margins to trim, and may appear up to three
    times: the margin can run into a background of its colour, so `media.trim` gives guesses.
    """
    options = options or VariantOptions()
    with pdq_hasher.one_blas_thread():  # one thread-limit switch for the whole scan
        luma, full_shape = _luma(source, full_shape)
        plain = pdq_hasher.hash_luma(luma, full_shape)
        variants = [Variant(PLAIN, plain.hash, plain.quality)]
        if options.enabled <= {PLAIN} or min(luma.shape) < pdq_hasher.MIN_DIMENSION:
            return variants  # nothing else asked for, or too small to hash at all (quality 0)
        variants.extend(_Work.of(luma, full_shape).variants(options))
    return variants


def match_variants(
    variants: Sequence[Variant],
    pdq_index: object,
    radius: int = MATCH_THRESHOLD,
    *,
    options: VariantOptions | None = None,
) -> list[VariantMatch]:
    """Search every usable variant in ONE `pdq_index.search` call; report each listed id once.

    `radius` applies to the plain hash, `options.radius(name)` (default `DEFAULT_RADII`) to the
    others; variants `options` does not enable are skipped. An id found by several
    variants is reported under the nearest; on equal distance the earlier variant (plain first)
    wins. Variants whose quality is below PDQ's minimum are not searched (too flat to tell apart).
    """
    options = options or VariantOptions()
    usable = [v for v in variants if v.quality >= MIN_QUALITY and options.wants(v.name)]
    if not usable:
        return []
    codes = np.frombuffer(b"".join(bytes.fromhex(v.pdq) for v in usable), dtype=np.uint8).reshape(-1, 32)
    limits = [options.radius(v.name, radius) for v in usable]
    results = pdq_index.search(codes, radius=max(limits))  # type: ignore[attr-defined]
    best: dict[int, tuple[int, int]] = {}  # id -> (distance, variant position)
    for position, ((ids, distances), limit) in enumerate(zip(results, limits, strict=True)):
        for listed, distance in zip(ids.tolist(), distances.tolist(), strict=True):
            if distance <= limit and (distance, position) < best.get(listed, (257, 0)):
                best[listed] = (distance, position)
    found: dict[int, list[tuple[int, int]]] = {}
    for listed, (distance, position) in best.items():
        found.setdefault(position, []).append((distance, listed))
    matches = []
    for position in sorted(found):
        pairs = sorted(found[position])
        matches.append(
            VariantMatch(
                usable[position].name,
                np.array([listed for _, listed in pairs], dtype=np.int64),
                np.array([distance for distance, _ in pairs], dtype=np.int32),
            )
        )
    return matches


def _luma(source: Source, full_shape: tuple[int, int] | None) -> tuple[np.ndarray, tuple[int, int] | None]:
    if isinstance(source, Image.Image):
        full_size = source.info.get(FULL_SIZE_KEY)
        if full_size and full_shape is None:
            full_shape = (full_size[1], full_size[0])
        if source.mode != "L":
            source = source.convert("RGB")
        source = np.asarray(source)
    array = np.asarray(source)
    if array.ndim == 3:
        return pdq_hasher.luma_from_rgb(array), full_shape
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"expected a non-empty 2-D luma or H x W x 3 RGB array, got shape {array.shape}")
    return array, full_shape


@dataclass(frozen=True)
class _Work:
    """The small copy variants are computed from, and how many original pixels each pixel holds.

    PDQ filters with a window that grows with the image, so a hash of the small copy is only close
    to the full-size hash when it is computed with the full-size filter folded onto the copy's
    pixels (`pdq_hasher.decimate`'s `full_shape`); without it, flips of a 768 px photo reduced by 2
    were measured 20 bits off.
    """

    pixels: np.ndarray
    scale: tuple[int, int]

    @classmethod
    def of(cls, luma: np.ndarray, full_shape: tuple[int, int] | None, side: int = WORK_SIDE) -> _Work:
        """Box-average `luma` by the largest integer factor keeping its shorter side >= `side`."""
        factor = min(luma.shape) // side
        if factor >= 2:
            # Pillow's box reduction: ~20x faster than a numpy mean over blocks (8-bit luma stays
            # 8-bit until reduced); a partial last block averages what it has, as the folded PDQ
            # filter expects.
            pixels = luma if luma.dtype == np.uint8 else np.asarray(luma, dtype=np.float32)
            image = np.asarray(Image.fromarray(pixels).reduce(factor), dtype=np.float32)
        else:
            image = np.asarray(luma, dtype=np.float32)
        full = full_shape or luma.shape
        scale = (max(round(full[0] / image.shape[0]), 1), max(round(full[1] / image.shape[1]), 1))
        return cls(image, scale)

    def full_shape(self, array: np.ndarray) -> tuple[int, int] | None:
        """The size `array` (cut from or shaped like `pixels`) stands for in original pixels."""
        if self.scale == (1, 1):
            return None
        return array.shape[0] * self.scale[0], array.shape[1] * self.scale[1]

    def variants(self, options: VariantOptions) -> list[Variant]:
        """Every enabled variant but plain, in `VARIANT_NAMES` order, hashed in one batch.

        Flips and crop pads are all decimations of these same pixels with other operators (a flip
        reverses an axis's operator, a pad folds an edge-padded one), so they come out of ONE
        `pdq_hasher.decimate_many` pass; a transposed variant is the transpose of an axis flip's
        coefficients (PDQ's decimation of a transposed image is the transposed decimation: each
        axis has its own, size-dependent filter). Trimmed boxes are other sizes: decimated apiece.
        Then one DCT, one median and one quality pass over the whole stack.
        """
        # numba kernels, imported on first use: every `hashhub` command (the hub's server too)
        # imports this module through the agent's CLI, and numba costs ~55 MB a process.
        from hashhub.media.trim import find_content
        from hashhub.signals import pdq_batch

        names: list[str] = []
        decimated: list[np.ndarray] = []
        if options.wants(TRIMMED):
            found = find_content(self.pixels)
            for box in found.boxes:
                content = found.apply(self.pixels, box)
                names.append(TRIMMED)
                decimated.append(pdq_batch.decimate_many(content, [self._operators(content.shape)]))
        flips = [name for name in DIHEDRAL if options.wants(name)]
        pads = [name for name in CROPS if options.wants(name)]
        # (flip rows, flip columns) -> position in the stack; then the pads.
        axes = list(dict.fromkeys(DIHEDRAL[name][:2] for name in flips))
        shape = self.pixels.shape
        operators = [self._operators(shape, *flip) for flip in axes]
        operators += [self._operators(shape, pad=CROPS[name]) for name in pads]
        first = sum(len(d) for d in decimated)
        if operators:
            decimated.append(pdq_batch.decimate_many(self.pixels, operators))
        if not decimated:
            return []
        stack = np.concatenate(decimated)
        spectra = pdq_hasher.dct16(stack)
        scores = pdq_hasher.qualities(stack)
        # The coefficient blocks to hash, in output order: (name, stack position, transposed).
        order = [(TRIMMED, position, False) for position in range(first)]
        order += [(n, first + axes.index(DIHEDRAL[n][:2]), DIHEDRAL[n][2]) for n in flips]
        order += [(n, first + len(axes) + k, False) for k, n in enumerate(pads)]
        blocks = np.stack([spectra[p].T if turned else spectra[p] for _, p, turned in order])
        hexes = pdq_hasher.hex_hashes(blocks)
        return [Variant(name, text, scores[p]) for (name, p, _), text in zip(order, hexes, strict=True)]

    def _operators(
        self, shape: tuple[int, int], flip_rows: bool = False, flip_cols: bool = False, *, pad: float = 0.0
    ) -> tuple[pdq_batch.AxisOperator, pdq_batch.AxisOperator]:
        """(rows, columns) operators decimating an array of `shape` cut from these pixels, flipped,
        or with `pad` of the listed image's width and height restored around it by repeating the
        edge pixels (the upload lost `pad` / 2 of each side: it is 1 - `pad` of the listed image)."""
        from hashhub.signals import pdq_batch  # on first use: see `variants`

        ops = []
        for length, scale, flipped in (
            (shape[0], self.scale[0], flip_rows),
            (shape[1], self.scale[1], flip_cols),
        ):
            margin = round(length * pad / (2 * (1 - pad))) if pad else 0
            ops.append(pdq_batch.axis_operator(length * scale, length, margin, reverse=flipped))
        return ops[0], ops[1]
