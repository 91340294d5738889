"""Matching videos: edited copies of a listed video are found with both vPDQ shares, unrelated videos
are not; the index's shares equal Meta's brute-force definition, and it updates in place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hashhub.index.errors import IndexInputError
from hashhub.index.vpdq import VpdqIndex
from hashhub.signals.vpdq import VpdqFrame, VpdqSignal, shares
from tests.support import video_clips as clips

SIZE = (480, 360)  # PDQ wants some resolution: at 320x240 a halving alone moves ~20 bits
FPS = 5
SLIDESHOW, PAN, OTHER = 1, 2, 3


@pytest.fixture(scope="module")
def originals(corpus: Path) -> dict[int, bytes]:
    photos = sorted((corpus / "photos").glob("*.jpg"))
    return {
        SLIDESHOW: clips.encode(clips.slideshow_frames(photos[10:18], 2.0, FPS, SIZE), fps=FPS),
        PAN: clips.encode(clips.pan_frames(corpus / "kodak" / "03.png", 6.0, 10, (480, 320)), fps=10),
        OTHER: clips.encode(clips.slideshow_frames(photos[500:506], 2.0, FPS, SIZE), fps=FPS),
    }


@pytest.fixture(scope="module")
def index(originals: dict[int, bytes]) -> VpdqIndex:
    ix = VpdqIndex()
    ix.add_many((video_id, VpdqSignal.hash_video(data).value) for video_id, data in originals.items())
    return ix


# (name, listed video, edit). "crop" takes 0.75% off each side: 3% of the picture's area.
EDITS = [
    ("bitrate", SLIDESHOW, {"bitrate": 120_000}),
    ("rescale", SLIDESHOW, {"scale": 0.5}),
    ("trim-20%", SLIDESHOW, {"keep": (0.1, 0.9)}),
    ("crop-3%-area", SLIDESHOW, {"crop": 0.0075}),
    ("webm", SLIDESHOW, {"fmt": clips.WEBM}),
    ("gif", SLIDESHOW, {"fmt": clips.GIF, "scale": 0.5}),
    ("pan-bitrate", PAN, {"bitrate": 120_000}),
    ("pan-rescale", PAN, {"scale": 0.5}),
    ("pan-trim-end-20%", PAN, {"keep": (0.0, 0.8)}),
    ("pan-crop-3%-area", PAN, {"crop": 0.0075}),
]


@pytest.mark.parametrize(("listed", "edit"), [e[1:] for e in EDITS], ids=[e[0] for e in EDITS])
def test_edited_copies_match_their_original(
    listed: int, edit: dict, originals: dict[int, bytes], index: VpdqIndex
) -> None:
    copy = clips.transcode(originals[listed], **edit)
    matches = index.search(VpdqSignal.hash_video(copy).value)
    assert [m.id for m in matches] == [listed]
    match = matches[0]
    assert match.query_share >= 0.8
    assert 0 < match.listed_share <= 1
    assert match.query_matched <= match.query_frames and match.listed_matched <= match.listed_frames
    if "keep" in edit:  # a trimmed copy holds only part of the listed frames
        assert match.listed_share < 1


def test_trimmed_copies_can_be_refused_by_the_listed_share(
    originals: dict[int, bytes], index: VpdqIndex
) -> None:
    trimmed = VpdqSignal.hash_video(clips.transcode(originals[SLIDESHOW], keep=(0.0, 0.6))).value
    assert [m.id for m in index.search(trimmed)] == [SLIDESHOW]
    assert index.search(trimmed, listed_threshold=0.9) == []


def test_listing_at_a_higher_rate_finds_copies_cut_mid_second(originals: dict[int, bytes]) -> None:
    # A fast pan cut 0.6 s in: its whole-second frames fall between the listed whole-second frames.
    query = VpdqSignal.hash_video(clips.transcode(originals[PAN], keep=(0.1, 0.9))).value
    ix = VpdqIndex()
    ix.add(PAN, VpdqSignal.hash_video(originals[PAN]).value)
    assert ix.search(query) == []
    ix.add(PAN, VpdqSignal.hash_video(originals[PAN], fps=2).value)
    assert [m.id for m in ix.search(query)] == [PAN]


def test_unrelated_videos_match_nothing(corpus: Path, index: VpdqIndex) -> None:
    photos = sorted((corpus / "photos").glob("*.jpg"))
    unrelated = clips.encode(clips.slideshow_frames(photos[1200:1206], 2.0, FPS, SIZE), fps=FPS)
    pan = clips.encode(clips.pan_frames(corpus / "kodak" / "20.png", 6.0, 10, (480, 320)), fps=10)
    for data in (unrelated, pan):
        assert index.search(VpdqSignal.hash_video(data).value, query_threshold=0.0) == []


def test_batch_search_answers_each_query(originals: dict[int, bytes], index: VpdqIndex) -> None:
    values = [VpdqSignal.hash_video(originals[v]).value for v in (OTHER, SLIDESHOW)]
    batch = index.search_many(
        [*values, "0,10,ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff,0"]
    )
    assert [[m.id for m in found] for found in batch] == [[OTHER], [SLIDESHOW], []]
    assert batch[0] == index.search(values[0])


# -- the index's arithmetic, on synthetic frames -------------------------------------------------------


def _random_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)


def _flip_bits(codes: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    flipped = np.unpackbits(codes, axis=1)
    for row in flipped:
        row[rng.choice(256, bits, replace=False)] ^= 1
    return np.packbits(flipped, axis=1)


def test_index_shares_equal_the_brute_force_definition() -> None:
    rng = np.random.default_rng(5)
    listed = {video: _random_codes(rng, int(rng.integers(5, 40))) for video in range(1, 30)}
    ix = VpdqIndex()
    ix.add_many(listed.items())
    # Queries built from pieces of several listed videos, some frames moved 20-40 bits, plus noise.
    for trial in range(20):
        parts = [listed[int(v)][: int(rng.integers(1, 6))] for v in rng.choice(29, 3, replace=False) + 1]
        query = np.concatenate([*parts, _random_codes(rng, trial % 4)])
        query = _flip_bits(query, int(rng.integers(20, 41)), rng)
        found = {m.id: m for m in ix.search(query, query_threshold=0.0)}
        for video, codes in listed.items():
            expected = shares(query, codes)
            if expected[0] == 0:
                assert video not in found
            else:
                assert (found[video].query_share, found[video].listed_share) == pytest.approx(expected)


def test_add_replaces_and_remove_forgets() -> None:
    rng = np.random.default_rng(9)
    first, second = _random_codes(rng, 12), _random_codes(rng, 4)
    ix = VpdqIndex()
    ix.add(7, first)
    assert [m.id for m in ix.search(first)] == [7]
    ix.add(7, second)  # replaced by a shorter video: the old frames must not linger
    assert ix.frame_count == 4 and len(ix) == 1
    assert ix.search(first, query_threshold=0.0) == []
    assert ix.search(second)[0].listed_frames == 4
    ix.remove([7, 8])
    ix.remove(99)  # one id, unknown: ignored
    assert 7 not in ix and ix.frame_count == 0
    assert ix.search(second) == []


def test_frames_below_quality_50_and_repeats_are_not_indexed() -> None:
    a, b = "a" * 64, "5" * 64
    frames = [VpdqFrame(0, 90, a, 0.0), VpdqFrame(1, 90, a, 1.0), VpdqFrame(2, 40, b, 2.0)]
    ix = VpdqIndex()
    ix.add(1, frames)
    assert ix.frame_count == 1
    assert ix.search([VpdqFrame(0, 100, b, 0.0)], query_threshold=0.0) == []
    # A query with no usable frame matches nothing rather than everything.
    assert ix.search([VpdqFrame(0, 10, a, 0.0)], query_threshold=0.0) == []


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda ix: ix.add(-1, "0,90," + "a" * 64 + ",0"), "video ids must be integers"),
        (lambda ix: ix.add(2**50, "0,90," + "a" * 64 + ",0"), "video ids must be integers"),
        (lambda ix: ix.add("7", "0,90," + "a" * 64 + ",0"), "video ids must be integers"),
        (lambda ix: ix.search("0,90," + "a" * 64 + ",0", query_threshold=1.5), "query_threshold must be"),
        (lambda ix: ix.search("0,90," + "a" * 64 + ",0", listed_threshold=-0.1), "listed_threshold must be"),
        (lambda ix: ix.search(np.zeros((2, 31), np.uint8)), "must have shape (n, 32)"),
    ],
)
def test_bad_input_is_an_index_input_error(call, fragment: str) -> None:
    with pytest.raises(IndexInputError) as caught:
        call(VpdqIndex())
    assert fragment in str(caught.value)
