"""Per-frame trimming of videos: a letterboxed or pillarboxed copy of a listed video is found only
through the trimmed frames' vPDQ (`hashhub.detect`, variant "trimmed"), and an unlisted boxed
video matches nothing. Videos are slideshows of corpus photos the test pretends are listed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest

from hashhub.detect import hash_media
from hashhub.index.vpdq import VpdqIndex
from hashhub.media.trim import trim_frame
from hashhub.signals.vpdq import VpdqSignal
from hashhub.variants import PLAIN_ONLY, TRIMMED, VariantOptions
from tests.support import video_clips

BORDERS = VariantOptions.from_names(["borders"])


def boxed(frames: Iterable[np.ndarray], size: tuple[int, int]) -> Iterator[np.ndarray]:
    """Each frame centred on black bars of `size` (width, height): pillarbox or letterbox."""
    for rgb in frames:
        canvas = np.zeros((size[1], size[0], 3), np.uint8)
        top, left = (size[1] - rgb.shape[0]) // 2, (size[0] - rgb.shape[1]) // 2
        canvas[top : top + rgb.shape[0], left : left + rgb.shape[1]] = rgb
        yield canvas


@pytest.fixture(scope="module")
def photos(corpus: Path) -> list[Path]:
    return sorted((corpus / "photos").glob("*.jpg"))[5::97][:6]


@pytest.fixture(scope="module")
def listed(photos) -> VpdqIndex:
    """The original (unboxed, 320x240) slideshow of the first three photos, listed as id 1."""
    video = video_clips.encode(video_clips.slideshow_frames(photos[:3]))
    ix = VpdqIndex()
    ix.add(1, VpdqSignal.hash_video(video).value)
    return ix


@pytest.mark.parametrize("size", [(480, 240), (320, 400)], ids=["pillarbox", "letterbox"])
def test_a_boxed_copy_matches_only_through_its_trimmed_frames(photos, listed, size) -> None:
    copy = video_clips.encode(boxed(video_clips.slideshow_frames(photos[:3]), size))
    plain = hash_media(copy, PLAIN_ONLY)
    assert plain.video_variants == ()
    assert listed.search(plain.hashed.hashes["vpdq"]) == []  # the untouched frames miss: bars move PDQ
    scanned = hash_media(copy, BORDERS)
    assert scanned.hashed.hashes == plain.hashed.hashes  # the plain vPDQ is still what is reported
    (variant,) = scanned.video_variants
    assert variant.name == TRIMMED
    (match,) = listed.search(variant.vpdq)
    assert match.id == 1 and match.query_share == 1.0


def test_an_unlisted_boxed_video_matches_nothing(photos, listed) -> None:
    other = video_clips.encode(boxed(video_clips.slideshow_frames(photos[3:]), (480, 240)))
    scanned = hash_media(other, BORDERS)
    assert [listed.search(v.vpdq) for v in scanned.video_variants] == [[]]
    assert listed.search(scanned.hashed.hashes["vpdq"]) == []


def test_the_hook_sees_every_sampled_frame_and_unboxed_videos_get_no_variant(photos) -> None:
    video = video_clips.encode(video_clips.slideshow_frames(photos[:2]))
    seen: list[tuple[int, int]] = []

    def spy(luma: np.ndarray) -> np.ndarray:
        seen.append(luma.shape)
        return trim_frame(luma)

    assert VpdqSignal.hash_frames(video, transform=spy) == VpdqSignal.hash_frames(video)
    assert seen == [(240, 320)] * 4  # 2 photos x 2 s at one frame a second
    assert hash_media(video, BORDERS).video_variants == ()
