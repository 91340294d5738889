"""Video decoding and vPDQ hashing from bytes: every supported container, sampling, limits, and a
clear MediaError for anything that is not a whole, decodable video."""

from __future__ import annotations

import contextlib
import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashhub.media import MediaError
from hashhub.media.video import VideoLimits, is_video, sample_frames
from hashhub.signals.vpdq import VpdqSignal, frame_codes, shares
from tests.support import video_clips as clips

# Beyond the usual: 10-bit H.264 (HDR phone footage decodes through FFmpeg's grey conversion) and
# H.264 in Matroska.
FORMATS = [
    clips.MP4,
    clips.WEBM,
    clips.WEBM_VP8,
    clips.MOV,
    clips.AVI,
    clips.GIF,
    clips.Format("mp4", "libx264", "yuv420p10le"),
    clips.Format("matroska", "libx264", "yuv420p"),
]
FORMAT_IDS = [
    "mp4-h264",
    "webm-vp9",
    "webm-vp8",
    "mov-h264",
    "avi-mjpeg",
    "gif",
    "mp4-h264-10bit",
    "mkv-h264",
]


@pytest.fixture(scope="module")
def photos(corpus: Path) -> list[Path]:
    return sorted((corpus / "photos").glob("*.jpg"))


@pytest.fixture(scope="module")
def slideshow_frames(photos: list[Path]) -> list[np.ndarray]:
    """Three photos, two seconds each, at 5 frames a second."""
    return list(clips.slideshow_frames(photos[:3], seconds_each=2.0, fps=5))


@pytest.fixture(scope="module")
def mp4(slideshow_frames: list[np.ndarray]) -> bytes:
    return clips.encode(slideshow_frames, clips.MP4, fps=5)


@pytest.fixture(scope="module")
def pan(corpus: Path) -> bytes:
    return clips.encode(clips.pan_frames(corpus / "kodak" / "03.png", seconds=4.0, fps=10), clips.MP4, fps=10)


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
def test_each_format_gives_the_same_frames_one_a_second(
    fmt: clips.Format, slideshow_frames: list[np.ndarray], mp4: bytes
) -> None:
    data = clips.encode(slideshow_frames, fmt, fps=5)
    assert is_video(data)
    frames = VpdqSignal.frames(VpdqSignal.hash_video(data).value)
    # Sampled at whole seconds (frame 5k at 5 fps), quality kept >= 50, each photo's held frames
    # collapsing to one or two hashes since repeats of the previous hash are dropped.
    assert {f.timestamp for f in frames} <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}
    assert all(f.frame == round(f.timestamp * 5) for f in frames)
    assert all(f.quality >= 50 for f in frames)
    assert {0.0, 2.0, 4.0} <= {f.timestamp for f in frames}
    assert all(a.pdq != b.pdq for a, b in itertools.pairwise(frames))
    # Whatever the codec, these are the pictures of the MP4 version.
    query, listed = frame_codes(frames), frame_codes(VpdqSignal.hash_frames(mp4))
    assert shares(query, listed) == (1.0, 1.0)


def test_fps_sets_the_sampling_interval(pan: bytes) -> None:
    assert [f.timestamp for f in VpdqSignal.hash_frames(pan)] == [0.0, 1.0, 2.0, 3.0]
    assert [f.timestamp for f in VpdqSignal.hash_frames(pan, fps=2)] == [i / 2 for i in range(8)]
    assert [f.frame for f in VpdqSignal.hash_frames(pan, fps=2)] == list(range(0, 40, 5))


def test_paths_and_bytes_give_the_same_hash(pan: bytes, tmp_path: Path) -> None:
    path = tmp_path / "pan.mp4"
    path.write_bytes(pan)
    assert is_video(path)
    from_path = [(f.index, f.timestamp) for f in sample_frames(path)]
    assert from_path == [(f.index, f.timestamp) for f in sample_frames(pan)]


def test_flat_frames_and_repeats_are_dropped(photos: list[Path]) -> None:
    black = np.zeros((*clips.SIZE[::-1], 3), np.uint8)
    picture = clips.load_photo(photos[0])
    # 2 s of black (quality 0), then one photo for 3 s: MJPEG codes each repeat identically.
    data = clips.encode([black] * 10 + [picture] * 15, clips.AVI, fps=5)
    hashed = VpdqSignal.hash_video(data)
    frames = VpdqSignal.frames(hashed.value)
    assert [(f.frame, f.timestamp) for f in frames] == [(10, 2.0)]
    assert hashed.quality == frames[0].quality >= 50


def test_a_blank_video_has_no_vpdq() -> None:
    black = np.zeros((120, 160, 3), np.uint8)
    hashed = VpdqSignal.hash_video(clips.encode([black] * 10, clips.MP4, fps=5))
    assert hashed.value is None
    assert hashed.quality == 0


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, "PNG")
    return buffer.getvalue()


def _still_gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, "GIF")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", False),
        (b"\x00" * 64, False),
        (b"hello, world, this is text" * 4, False),
        (_png(), False),
        (_still_gif(), False),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", False),  # a HEIF photo
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", True),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", True),
        (b"RIFF\x00\x00\x00\x00AVI LIST", True),
    ],
    ids=["empty", "zeros", "text", "png", "still-gif", "heif", "mp4-header", "webm-header", "avi-header"],
)
def test_is_video_sniffs_headers(data: bytes, expected: bool) -> None:
    assert is_video(data) is expected


def test_is_video_on_unreadable_paths_is_false(tmp_path: Path) -> None:
    assert not is_video(tmp_path / "missing.mp4")
    assert not is_video(tmp_path)


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda clip: b"", "file is empty"),
        (lambda clip: b"not a video at all" * 10, "not a video in a supported format"),
        (lambda clip: _png(), "not a video in a supported format"),
        (lambda clip: _still_gif(), "not a video in a supported format"),
        (lambda clip: clip(clips.MP4)[:300], "video data is corrupt or truncated"),
        (lambda clip: _truncated(clip(clips.MP4)), "video data is corrupt or truncated"),
        (lambda clip: _truncated(clip(clips.MOV)), "video data is corrupt or truncated"),
        (lambda clip: _truncated(clip(clips.WEBM)), "video data is truncated"),
        (lambda clip: _truncated(clip(clips.AVI)), "video data is truncated"),
    ],
    ids=[
        "empty",
        "text",
        "png",
        "still-gif",
        "mp4-header-only",
        "mp4-half",
        "mov-half",
        "webm-half",
        "avi-half",
    ],
)
def test_bad_files_raise_media_error(make, fragment: str, slideshow_frames: list[np.ndarray]) -> None:
    def clip(fmt: clips.Format) -> bytes:
        return clips.encode(slideshow_frames, fmt, fps=5)

    with pytest.raises(MediaError, match=fragment):
        VpdqSignal.hash_video(make(clip))


def test_unreadable_path_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot read file"):
        list(sample_frames(tmp_path / "missing.mp4"))


@pytest.mark.parametrize(
    ("limits", "fragment"),
    [
        (VideoLimits(max_bytes=1000), "bytes, over the limit of 1,000"),
        (VideoLimits(max_duration=2.0), "long, over the limit of 2 s"),
        (VideoLimits(max_pixels=320 * 200), "320x240 = 76,800 pixels, over the limit of 64,000"),
    ],
    ids=["bytes", "duration", "pixels"],
)
def test_limits_are_enforced_before_decoding(
    limits: VideoLimits, fragment: str, mp4: bytes, tmp_path: Path
) -> None:
    with pytest.raises(MediaError, match=fragment):
        VpdqSignal.hash_video(mp4, limits=limits)
    path = tmp_path / "clip.mp4"
    path.write_bytes(mp4)
    with pytest.raises(MediaError, match=fragment):
        list(sample_frames(path, limits=limits))


def test_duration_limit_holds_when_the_header_does_not_say(photos: list[Path]) -> None:
    # A WebM as streamed (live) declares no duration: the limit is enforced on decoded timestamps.
    frames = clips.slideshow_frames(photos[:3], 2.0, fps=2, size=(64, 48))
    data = clips.encode(frames, clips.WEBM, fps=2, container_options={"live": "1"})
    assert len(VpdqSignal.hash_frames(data)) >= 3
    with pytest.raises(MediaError, match="over the limit of 3 s"):
        VpdqSignal.hash_video(data, limits=VideoLimits(max_duration=3.0))


@pytest.mark.parametrize("fps", [0, -1, 1000, True, "1"])
def test_bad_sampling_rates_are_refused(fps: object, mp4: bytes) -> None:
    with pytest.raises(ValueError, match="fps must be a number"):
        VpdqSignal.hash_video(mp4, fps=fps)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fmt", [clips.MP4, clips.WEBM, clips.AVI, clips.GIF], ids=["mp4", "webm", "avi", "gif"]
)
def test_cut_or_damaged_anywhere_hashes_or_raises_media_error(fmt: clips.Format, photos: list[Path]) -> None:
    data = clips.encode(clips.slideshow_frames(photos[:3], 1.0, fps=5, size=(96, 64)), fmt, fps=5)
    rng = np.random.default_rng(3)
    damaged = [data[:cut] for cut in rng.integers(0, len(data), 40)]
    for _ in range(40):
        copy = bytearray(data)
        spots = rng.integers(0, len(data), 8)
        values = rng.integers(0, 256, 8)
        for spot, value in zip(spots, values, strict=True):
            copy[spot] = value
        damaged.append(bytes(copy))
    for bad in damaged:
        with contextlib.suppress(MediaError):  # anything else propagates and fails the test
            VpdqSignal.hash_frames(bad)
