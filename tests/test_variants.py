"""Query variants on corpus photos: listed photos are found after borders, letterboxing, mirrors,
rotations and crops, the match says which variant found it, and unlisted photos match nothing.

"Listed" photos are ordinary corpus photos the tests pretend are listed, by their reference hashes
(Meta's C++ PDQ), as a member's index would hold them. Thresholds are the recall measured on this
sample with some room (benchmarks/detection.py measures 100 photos and prints the full table).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from hashhub.hashing import hash_bytes
from hashhub.index import PdqIndex
from hashhub.media import open_image
from hashhub.signals.pdq import PdqSignal
from hashhub.variants import (
    DIHEDRAL,
    PLAIN,
    PLAIN_ONLY,
    TRIMMED,
    VARIANT_NAMES,
    Variant,
    VariantOptions,
    match_variants,
    query_variants,
)

LISTED = 40
UNLISTED = 150


def border(share: float, colour: tuple[int, int, int]) -> Callable[[Image.Image], Image.Image]:
    return lambda im: ImageOps.expand(im, round(share * max(im.size)), fill=colour)


def letterbox(im: Image.Image) -> Image.Image:
    width, height = im.size
    frame = Image.new("RGB", (max(width, round(height * 16 / 9)), max(height, round(width * 9 / 16))))
    frame.paste(im, ((frame.width - width) // 2, (frame.height - height) // 2))
    return frame


def crop(share: float) -> Callable[[Image.Image], Image.Image]:
    def edit(im: Image.Image) -> Image.Image:
        dx, dy = round(im.width * share / 2), round(im.height * share / 2)
        return im.crop((dx, dy, im.width - dx, im.height - dy))

    return edit


# edit name -> (edit, minimum recall over the sample, variant names that may report it)
EDITS = {
    "border5_black": (border(0.05, (0, 0, 0)), 0.9, {TRIMMED}),
    "border5_white": (border(0.05, (255, 255, 255)), 0.85, {TRIMMED}),
    "border10_black": (border(0.10, (0, 0, 0)), 0.9, {TRIMMED}),
    "border10_white": (border(0.10, (255, 255, 255)), 0.85, {TRIMMED}),
    "letterbox_16x9": (letterbox, 0.9, {TRIMMED}),
    "mirror": (lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 1.0, {"mirror"}),
    "rot90": (lambda im: im.transpose(Image.Transpose.ROTATE_270), 1.0, {"rot90"}),
    "rot180": (lambda im: im.transpose(Image.Transpose.ROTATE_180), 1.0, {"rot180"}),
    "rot270": (lambda im: im.transpose(Image.Transpose.ROTATE_90), 1.0, {"rot270"}),
    "crop3": (crop(0.03), 0.9, {PLAIN, "pad3", "pad6"}),
    "crop6": (crop(0.06), 0.75, {"pad3", "pad6"}),
}


def codes(hashes: list[str]) -> np.ndarray:
    return np.frombuffer(b"".join(bytes.fromhex(h) for h in hashes), dtype=np.uint8).reshape(-1, 32)


def jpeg(im: Image.Image) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    return out.getvalue()


def scan(data: bytes, index: PdqIndex, options: VariantOptions | None = None) -> dict[int, str]:
    """Listed id -> the variant that matched, scanning one uploaded file as the agent would."""
    image = open_image(data, target_size=PdqSignal.decode_target, mode=PdqSignal.decode_mode)
    matches = match_variants(query_variants(image, options=options), index, options=options)
    return {int(i): m.variant for m in matches for i in m.ids}


@pytest.fixture(scope="module")
def rows(corpus: Path) -> list[dict[str, str]]:
    with (corpus / "photos.reference.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def listed(rows) -> list[dict[str, str]]:
    """An even spread over the corpus's categories (offset from the benchmark's sample)."""
    return rows[7 :: len(rows) // LISTED][:LISTED]


@pytest.fixture(scope="module")
def index(listed) -> PdqIndex:
    ix = PdqIndex()
    ix.add(np.arange(len(listed), dtype=np.int64), codes([r["pdq"] for r in listed]))
    return ix


def load(corpus: Path, row: dict[str, str]) -> Image.Image:
    with Image.open(corpus / "photos" / row["file"]) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


@pytest.mark.parametrize("name", list(EDITS))
def test_listed_photos_are_found_after_the_edit_and_the_match_names_the_variant(name, corpus, listed, index):
    edit, minimum, reported_as = EDITS[name]
    found, wrong_variant = 0, []
    for position, row in enumerate(listed):
        matches = scan(jpeg(edit(load(corpus, row))), index)
        if position in matches:
            found += 1
            if matches[position] not in reported_as:
                wrong_variant.append((row["file"], matches[position]))
        assert set(matches) <= {position}, f"{row['file']} after {name} matched other listed photos"
    assert found / len(listed) >= minimum, f"{name}: found {found} of {len(listed)}"
    assert not wrong_variant


def test_the_plain_hash_alone_misses_these_edits(corpus, listed, index):
    """What the variants are for: PDQ of the edited upload matches (almost) none of them."""
    for name in ("border5_black", "letterbox_16x9", "mirror", "rot90", "crop6"):
        edit = EDITS[name][0]
        found = sum(
            position in scan(jpeg(edit(load(corpus, row))), index, PLAIN_ONLY)
            for position, row in enumerate(listed)
        )
        assert found <= 0.05 * len(listed), name


def test_unlisted_photos_match_nothing_untouched_or_edited(corpus, rows, listed, index):
    listed_files = {r["file"] for r in listed}
    unlisted = [r for r in rows if r["file"] not in listed_files][5 :: len(rows) // UNLISTED][:UNLISTED]
    edits = list(EDITS.values())
    for position, row in enumerate(unlisted):
        data = (corpus / "photos" / row["file"]).read_bytes()
        assert scan(data, index) == {}, row["file"]
        edit = edits[position % len(edits)][0]
        assert scan(jpeg(edit(load(corpus, row))), index) == {}, row["file"]


def test_plain_comes_first_and_is_the_hash_the_scanner_reports(corpus, listed):
    data = (corpus / "photos" / listed[0]["file"]).read_bytes()
    variants = query_variants(open_image(data, target_size=512, mode="L"))
    assert variants[0].name == PLAIN
    assert variants[0].pdq == hash_bytes(data, ["pdq"]).hashes["pdq"]
    assert [v.name for v in variants if v.name != TRIMMED] == [n for n in VARIANT_NAMES if n != TRIMMED]


def test_flips_and_turns_are_exact_on_lossless_photos(corpus):
    """A variant of the turned image is the hash of the original, to a bit or two (float rounding)."""
    turns = {
        "mirror": Image.Transpose.FLIP_LEFT_RIGHT,
        "flipv": Image.Transpose.FLIP_TOP_BOTTOM,
        "rot90": Image.Transpose.ROTATE_270,
        "rot180": Image.Transpose.ROTATE_180,
        "rot270": Image.Transpose.ROTATE_90,
        "transpose": Image.Transpose.TRANSPOSE,
        "transverse": Image.Transpose.TRANSVERSE,
    }
    assert set(turns) == set(DIHEDRAL)
    for path in sorted((corpus / "kodak").glob("*.png"))[:4]:
        image = Image.open(path).convert("L")
        original = query_variants(image, options=PLAIN_ONLY)[0].pdq
        for name, turn in turns.items():
            variants = {v.name: v.pdq for v in query_variants(image.transpose(turn))}
            assert PdqSignal.distance(variants[name], original) <= 2, (path.name, name)


def test_large_uploads_decoded_reduced_still_match(corpus, listed, index):
    """Phone-sized JPEGs: the scanner decodes at reduced size; variants work on a smaller copy."""
    for position, row in enumerate(listed[:4]):
        big = load(corpus, row).resize((3000, 2000), Image.Resampling.BICUBIC)
        upload = border(0.05, (0, 0, 0))(big.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
        assert scan(jpeg(big.transpose(Image.Transpose.ROTATE_180)), index) == {position: "rot180"}
        # A mirrored AND bordered upload is two edits: not covered, and must not match wrongly.
        assert set(scan(jpeg(upload), index)) <= {position}


def test_options_choose_variants_and_radii():
    options = VariantOptions.from_names("borders, Rotations", radii={"trimmed": 12})
    assert options.enabled == {PLAIN, TRIMMED, "rot90", "rot180", "rot270"}
    assert options.radius(TRIMMED) == 12 and options.radius("rot90") == 31 and options.radius(PLAIN, 20) == 20
    assert VariantOptions.from_names(["none"]).enabled == {PLAIN}
    with pytest.raises(ValueError, match=r"unknown variant name.*flipped"):
        VariantOptions.from_names(["mirror", "flipped"])
    with pytest.raises(ValueError, match="radius"):
        VariantOptions(radii={"mirror": 300})


def test_only_enabled_variants_are_computed_and_matched(corpus, listed, index):
    mirrored = jpeg(load(corpus, listed[3]).transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    rotations = VariantOptions.from_names(["rotations"])
    image = open_image(mirrored, target_size=512, mode="L")
    assert [v.name for v in query_variants(image, options=rotations)] == [PLAIN, "rot180", "rot90", "rot270"]
    assert scan(mirrored, index, rotations) == {}
    assert scan(mirrored, index, VariantOptions.from_names(["mirrors"])) == {3: "mirror"}


class CountingIndex(PdqIndex):
    """A real index that counts its searches."""

    searches = 0

    def search(self, codes, radius=31):
        self.searches += 1
        return super().search(codes, radius=radius)


def test_all_variants_go_in_one_search_and_each_id_is_reported_once_under_its_best_variant():
    base = np.random.default_rng(3).integers(0, 256, size=32, dtype=np.uint8)
    near = base.copy()
    near[0] ^= 0b111  # 3 bits away
    ix = CountingIndex()
    ix.add(np.array([7, 8]), np.stack([base, near]))
    variants = [
        Variant(PLAIN, near.tobytes().hex(), 90),  # id 8 at 0, id 7 at 3
        Variant("mirror", base.tobytes().hex(), 90),  # id 7 at 0, id 8 at 3
        Variant("rot90", base.tobytes().hex(), 30),  # too flat to search
    ]
    found = match_variants(variants, ix)
    assert ix.searches == 1
    assert [(m.variant, m.ids.tolist(), m.distances.tolist()) for m in found] == [
        (PLAIN, [8], [0]),
        ("mirror", [7], [0]),
    ]
    # On equal distance the plain hash wins.
    tie = [Variant(PLAIN, base.tobytes().hex(), 90), Variant("mirror", base.tobytes().hex(), 90)]
    assert [(m.variant, m.ids.tolist()) for m in match_variants(tie, ix)] == [(PLAIN, [7, 8])]
    assert match_variants([Variant(PLAIN, base.tobytes().hex(), 10)], ix) == []


def test_variant_radius_is_tighter_than_plain_where_measurement_says_so():
    base = np.zeros(32, dtype=np.uint8)
    far = base.copy()
    far[:3] = 0xFF  # 24 bits away
    ix = PdqIndex()
    ix.add(np.array([1]), far[None, :])
    hashed = base.tobytes().hex()
    assert match_variants([Variant(PLAIN, hashed, 90)], ix)[0].variant == PLAIN
    assert match_variants([Variant(TRIMMED, hashed, 90)], ix) == []  # trimmed matches within 20
    assert match_variants([Variant("mirror", hashed, 90)], ix)[0].variant == "mirror"
    loose = VariantOptions(radii={TRIMMED: 24})
    assert match_variants([Variant(TRIMMED, hashed, 90)], ix, options=loose)[0].variant == TRIMMED


def test_arrays_and_images_give_the_same_variants(corpus, listed):
    image = load(corpus, listed[1])
    from_image = query_variants(image)
    assert query_variants(np.asarray(image)) == from_image
    assert query_variants(np.asarray(image.convert("L"))) != []
    with pytest.raises(ValueError, match="2-D luma"):
        query_variants(np.zeros((4, 4, 4, 4)))
    with pytest.raises(ValueError, match="non-empty"):
        query_variants(np.zeros((0, 0)))


def test_images_too_small_to_hash_give_only_the_plain_hash_at_quality_0():
    for shape in [(1, 1), (3, 100)]:
        variants = query_variants(np.full(shape, 128, dtype=np.uint8))
        assert [(v.name, v.quality) for v in variants] == [(PLAIN, 0)]


def boxed_frame(photo: Image.Image, size: tuple[int, int] = (640, 360)) -> np.ndarray:
    """The photo scaled to fit a black 16:9 video frame: pillarbox bars for photos narrower than
    16:9, letterbox bars for wider ones."""
    scale = min(size[0] / photo.width, size[1] / photo.height)
    fitted = photo.resize(
        (round(photo.width * scale), round(photo.height * scale)), Image.Resampling.BILINEAR
    )
    frame = Image.new("RGB", size)
    frame.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return np.asarray(frame)


def test_a_letterboxed_video_is_matched_frame_by_frame(corpus, listed, index):
    """A slideshow of three listed photos in black 16:9 bars, H.264: each sampled frame's trimmed
    variant finds its photo; the frames' plain hashes do not."""
    from hashhub.media.video import sample_frames
    from tests.support.video_clips import encode

    shown = [0, 5, 9]
    frames = [boxed_frame(load(corpus, listed[i])) for i in shown for _ in range(20)]  # 2 s each at 10 fps
    video = encode(frames)
    found = []
    for frame in sample_frames(video, fps=1.0):
        assert scan_luma(frame.luma, index, PLAIN_ONLY) == {}
        found.append(scan_luma(frame.luma, index))
    assert len(found) == 6
    assert found == [{shown[k // 2]: TRIMMED} for k in range(6)]


def scan_luma(luma: np.ndarray, index: PdqIndex, options: VariantOptions | None = None) -> dict[int, str]:
    matches = match_variants(query_variants(luma, options=options), index, options=options)
    return {int(i): m.variant for m in matches for i in m.ids}
