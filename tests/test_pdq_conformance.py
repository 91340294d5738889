"""PDQ conformance against Meta's C++ reference over the whole shared corpus.

The corpus's *.reference.csv files hold, per image, the crypto hashes of the bytes and the PDQ hash
and quality Meta's C++ PDQ computes on the full-size pixels. Conformance as the PDQ authors define
it: within Hamming distance 10 for every image of quality >= 80; we also hold the median to <= 2
and quality to within 5 points. Crypto hashes must be equal.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashhub.hashing import hash_path
from hashhub.media import FULL_SIZE_KEY, open_image
from hashhub.signals import PdqSignal
from hashhub.signals.pdq_hasher import DIHEDRAL_NAMES, dihedral_hashes, hash_luma, luma_from_rgb

SETS = {
    "photos": ("photos", "photos.reference.csv"),
    "kodak": ("kodak", "kodak.reference.csv"),
    "pdq-reference": ("pdq-reference/images", "pdq-reference/reference.csv"),
}
MAX_DISTANCE = 10
MAX_MEDIAN = 2
MAX_QUALITY_GAP = 5


def _reference(corpus: Path, name: str) -> tuple[Path, list[dict[str, str]]]:
    folder, table = SETS[name]
    with (corpus / table).open(newline="") as handle:
        return corpus / folder, list(csv.DictReader(handle))


@pytest.mark.parametrize("name", sorted(SETS))
def test_hashes_match_the_reference(corpus: Path, name: str) -> None:
    folder, rows = _reference(corpus, name)
    assert rows, f"{name}: reference table is empty"
    distances: list[int] = []
    problems: list[str] = []
    for row in rows:
        result = hash_path(folder / row["file"])
        for crypto in ("md5", "sha1", "sha256"):
            if result.hashes.get(crypto) != row[crypto]:
                problems.append(f"{row['file']}: {crypto} {result.hashes.get(crypto)} != {row[crypto]}")
        expected_quality = int(row["pdq_quality"])
        if expected_quality < 80:
            continue
        assert result.error is None, f"{row['file']}: {result.error}"
        distance = PdqSignal.distance(result.hashes["pdq"], row["pdq"])
        distances.append(distance)
        if distance > MAX_DISTANCE:
            problems.append(f"{row['file']}: pdq distance {distance}")
        if abs(result.quality["pdq"] - expected_quality) > MAX_QUALITY_GAP:
            problems.append(f"{row['file']}: quality {result.quality['pdq']} vs {expected_quality}")
    assert not problems, "\n".join(problems[:20])
    assert distances, f"{name}: no image of quality >= 80"
    assert statistics.median(distances) <= MAX_MEDIAN


def test_low_quality_images_have_no_usable_hash(corpus: Path) -> None:
    folder, rows = _reference(corpus, "pdq-reference")
    flat = [row for row in rows if int(row["pdq_quality"]) < 50]
    assert flat, "the reference set has low-quality images"
    for row in flat:
        result = hash_path(folder / row["file"])
        assert "pdq" not in result.hashes
        assert result.error is None
        assert abs(result.quality["pdq"] - int(row["pdq_quality"])) <= MAX_QUALITY_GAP


def test_dihedral_variants_match_the_reference_rotations_and_flips(corpus: Path) -> None:
    folder, rows = _reference(corpus, "pdq-reference")
    reference = {row["file"]: row["pdq"] for row in rows}
    original = np.asarray(Image.open(folder / "bridge-1-original.jpg").convert("RGB"))
    variants = dihedral_hashes(luma_from_rgb(original))
    files = {
        "original": "bridge-1-original.jpg",
        "rotate90": "bridge-2-rotate-90.jpg",
        "rotate180": "bridge-3-rotate-180.jpg",
        "rotate270": "bridge-4-rotate-270.jpg",
        "flipx": "bridge-5-flipx.jpg",
        "flipy": "bridge-6-flipy.jpg",
        "flip_plus1": "bridge-7-flip-plus-1.jpg",
        "flip_minus1": "bridge-8-flip-minus-1.jpg",
    }
    assert set(files) == set(DIHEDRAL_NAMES)
    for name, file in files.items():
        assert PdqSignal.distance(variants[name].hash, reference[file]) <= MAX_DISTANCE, name


@pytest.fixture(scope="module")
def large_jpegs(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Phone-sized JPEGs made from corpus photos (and Kodak photos, which keep fine detail)."""
    folder = tmp_path_factory.mktemp("large")
    sources = sorted((corpus / "photos").glob("*.jpg"))[::300] + sorted((corpus / "kodak").glob("*.png"))[:6]
    made = []
    for index, source in enumerate(sources):
        with Image.open(source) as image:
            big = image.convert("RGB").resize((3000, 2000), Image.Resampling.BICUBIC)
        target = folder / f"{index:02d}.jpg"
        big.save(target, quality=90)
        made.append(target)
    return made


def test_large_jpegs_decoded_at_reduced_size_stay_conformant(large_jpegs: list[Path]) -> None:
    """The fast path (JPEG DCT scaling) against PDQ of the full-size pixels."""
    distances = []
    for path in large_jpegs:
        fast = open_image(path, target_size=PdqSignal.decode_target, mode="L")
        assert max(fast.size) < 3000, "large JPEGs are decoded at reduced size"
        assert fast.info[FULL_SIZE_KEY] == (3000, 2000)
        with Image.open(path) as image:
            full = hash_luma(luma_from_rgb(np.asarray(image.convert("RGB"))))
        result = hash_path(path)
        distances.append(PdqSignal.distance(result.hashes["pdq"], full.hash))
        assert abs(result.quality["pdq"] - full.quality) <= MAX_QUALITY_GAP
    assert max(distances) <= MAX_DISTANCE
    assert statistics.median(distances) <= MAX_MEDIAN


def test_same_pixels_in_lossless_formats_give_the_same_hash(corpus: Path, tmp_path: Path) -> None:
    _, rows = _reference(corpus, "kodak")
    expected = rows[0]["pdq"]
    with Image.open(corpus / "kodak" / rows[0]["file"]) as image:
        for fmt in ("BMP", "TIFF", "WEBP", "GIF"):
            path = tmp_path / f"copy.{fmt.lower()}"
            options = {"lossless": True} if fmt == "WEBP" else {}
            image.convert("RGB").save(path, format=fmt, **options)
            result = hash_path(path)
            # GIF holds 256 colours, so its pixels are not quite the same.
            limit = MAX_DISTANCE if fmt == "GIF" else 0
            assert PdqSignal.distance(result.hashes["pdq"], expected) <= limit, fmt
