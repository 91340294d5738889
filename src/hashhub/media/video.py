"""Decode videos from untrusted bytes with PyAV: format sniffing, limits, one luma frame per interval.

    from hashhub.media.video import is_video, sample_frames, VideoLimits
    is_video(data)                                   # MP4/MOV, WebM/MKV, AVI, animated GIF
    for frame in sample_frames(data, fps=1.0):       # VideoFrame(index, timestamp, luma)
        ...

Safety: the container format is chosen here from the file's magic bytes and handed to FFmpeg by
name, so FFmpeg never probes; a crafted file cannot reach demuxers that open other files or URLs
(HLS playlists, concat lists). Data is decoded from memory (uploads are never written to disk). The
byte, pixel and duration limits are checked on the header before any frame is decoded, and again
on every decoded frame, since headers can lie.

Sampling: the frame on screen at each multiple of 1/fps seconds (timestamps counted from the first
frame) is kept. For constant-rate video at an integer frame rate this is the same frame Meta's vPDQ
picks (every round(rate / fps)-th frame); with variable rates (GIFs) it follows the timestamps.

Errors: everything wrong with the input is a `MediaError` whose message says what, e.g. "file is
empty", "not a video in a supported format (...)", "video data is corrupt or truncated: ...",
"video is 7,300 s long, over the limit of 7,200 s".
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from hashhub.media.errors import MediaError

#: Container formats accepted, as users know them; each maps to the FFmpeg demuxer that reads it.
SUPPORTED_FORMATS = ("MP4/MOV", "WebM/Matroska", "AVI", "animated GIF")
#: Default limits: uploads are held in memory, so bytes are capped; duration bounds decoding work;
#: the pixel cap is 8K UHD per frame.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_DURATION = 3 * 3600.0
#: wall-clock seconds one video may spend decoding; a crafted file must not hold a worker for long.
DEFAULT_MAX_DECODE_SECONDS = 120.0
DEFAULT_MAX_PIXELS = 7680 * 4320
#: Bound on decoded frames per second of the duration limit, so a file whose timestamps stand
#: still cannot make the decoder run forever.
_MAX_FRAME_RATE = 240
# A file decoding to less than this share of its declared frames or duration (less 1) is truncated.
_COMPLETE_SHARE = 0.9
# Sample times within this many seconds of a frame's timestamp count as on that frame (float noise).
_EPSILON = 1e-6
# HEIF/AVIF images are ISO media files too; their `ftyp` brands say "image", so they are not videos.
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif"})
_MP4_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})
# 8-bit formats whose first plane is the luma (Y) channel; anything else goes through RGB.
_LIMITED_RANGE_Y = frozenset({"yuv420p", "yuv422p", "yuv444p", "yuv411p", "yuv440p", "nv12", "nv21"})
_FULL_RANGE_Y = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "gray"})
# Studio-swing luma (16-235) stretched to 0-255, as an RGB conversion of the frame would.
_STUDIO_SCALE = np.float32(255.0 / 219.0)
_STUDIO_OFFSET = np.float32(-16.0 * 255.0 / 219.0)
_COLOR_RANGE_JPEG = 2  # AVCOL_RANGE_JPEG: the Y plane is already full range

Source = bytes | bytearray | memoryview | str | Path


@dataclass(frozen=True, slots=True)
class VideoLimits:
    """What a caller is willing to decode. The hub and agent build one from their settings."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_duration: float = DEFAULT_MAX_DURATION
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_decode_seconds: float = DEFAULT_MAX_DECODE_SECONDS


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One sampled frame: its index in decode order, seconds from the first frame, and luma 0-255."""

    index: int
    timestamp: float
    luma: np.ndarray


def sniff(head: bytes) -> str | None:
    """The FFmpeg demuxer for a file starting with `head` (its first 16 bytes suffice), or None.

    GIFs are reported whatever their frame count; `is_video` also checks that a GIF is animated.
    """
    if head[4:8] in _MP4_BOXES:
        if head[4:8] == b"ftyp" and head[8:12] in _IMAGE_BRANDS:
            return None
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


def is_video(source: Source) -> bool:
    """True for data (or a file) in a supported video format; GIFs only when they have 2+ frames.

    Reads only the first bytes, plus a GIF's frame headers. Unreadable files are not videos.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source[:16])
        container = sniff(data)
        return container is not None and (container != "gif" or _animated_gif(io.BytesIO(source)))
    try:
        with Path(source).open("rb") as stream:
            container = sniff(stream.read(16))
            if container == "gif":
                stream.seek(0)
                return _animated_gif(stream)
    except OSError:
        return False
    return container is not None


def _animated_gif(stream: io.IOBase) -> bool:
    # Pillow's `is_animated` walks to the second frame's header without decoding pixels.
    try:
        with Image.open(stream, formats=("GIF",)) as image:
            return bool(getattr(image, "is_animated", False))
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return False  # a GIF bomb is then refused by the image decoder's pixel limit, with the reason


def sample_frames(
    source: Source, *, fps: float = 1.0, limits: VideoLimits | None = None
) -> Iterator[VideoFrame]:
    """Decode `source` (bytes, or a path read into memory) and yield the frame on screen at each
    multiple of 1/fps seconds. Raises `MediaError` for anything that is not a decodable video
    within `limits`; frames already yielded stay valid."""
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps <= _MAX_FRAME_RATE:
        raise ValueError(f"fps must be a number above 0 and at most {_MAX_FRAME_RATE}, got {fps!r}")
    limits = limits or VideoLimits()
    data = _read(source, limits.max_bytes)
    demuxer = sniff(data[:16])
    if demuxer is None or (demuxer == "gif" and not _animated_gif(io.BytesIO(data))):
        raise MediaError(f"not a video in a supported format ({', '.join(SUPPORTED_FORMATS)})")
    try:
        with av.open(io.BytesIO(data), mode="r", format=demuxer) as container:
            stream = _video_stream(container, limits)
            yield from _sample(container, stream, 1.0 / fps, limits)
    except MediaError:
        raise
    except MemoryError:
        raise MediaError("video is too large to decode in the memory available") from None
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise MediaError(f"video data is corrupt or truncated: {_reason(exc)}") from None


def _read(source: Source, max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | Path):
        try:
            with Path(source).open("rb") as stream:
                size = stream.seek(0, io.SEEK_END)
                if size > max_bytes:
                    raise MediaError(_too_big(size, max_bytes))
                stream.seek(0)
                data = stream.read()
        except OSError as exc:
            raise MediaError(f"cannot read file: {exc.strerror or exc}") from None
    else:
        raise TypeError(f"source must be bytes or a path, got {type(source).__name__}")
    if not data:
        raise MediaError("file is empty")
    if len(data) > max_bytes:
        raise MediaError(_too_big(len(data), max_bytes))
    return data


def _too_big(size: int, limit: int) -> str:
    return f"video file is {size:,} bytes, over the limit of {limit:,}"


def _video_stream(container: av.container.InputContainer, limits: VideoLimits) -> av.VideoStream:
    if not container.streams.video:
        raise MediaError("file holds no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None:  # FFmpeg has no decoder for this stream's codec
        raise MediaError("video stream's codec is unknown or not supported, or its header is corrupt")
    # Demux only the video: other streams' packets are dropped before they reach any decoder.
    for other in container.streams:
        if other is not stream:
            other.discard = "all"
    _check_pixels(stream.codec_context.width, stream.codec_context.height, limits)
    if container.duration is not None and container.duration / av.time_base > limits.max_duration:
        raise MediaError(_too_long(container.duration / av.time_base, limits))
    # Frame and slice threads: decoding is most of the cost of hashing a video.
    stream.thread_type = "AUTO"
    return stream


def _check_pixels(width: int, height: int, limits: VideoLimits) -> None:
    if width * height > limits.max_pixels:
        raise MediaError(
            f"video frames are {width}x{height} = {width * height:,} pixels, "
            f"over the limit of {limits.max_pixels:,}"
        )


def _too_long(seconds: float, limits: VideoLimits) -> str:
    return f"video is {seconds:,.0f} s long, over the limit of {limits.max_duration:,.0f} s"


def _sample(
    container: av.container.InputContainer, stream: av.VideoStream, interval: float, limits: VideoLimits
) -> Iterator[VideoFrame]:
    """Frame i is on screen from its timestamp until the next frame's; it is sampled when a sample
    time falls in that span. So each frame is held until its successor arrives (or the stream ends)."""
    max_frames = int(limits.max_duration * _MAX_FRAME_RATE) + 1
    rate = float(stream.average_rate) if stream.average_rate else 0.0
    origin: float | None = None
    next_sample = 0.0
    held: tuple[av.VideoFrame, int, float] | None = None
    last = 0.0
    deadline = time.monotonic() + limits.max_decode_seconds
    for index, frame in enumerate(container.decode(stream)):
        if time.monotonic() > deadline:  # checked per frame: FFmpeg cannot be interrupted mid-frame
            raise MediaError(f"video took over {limits.max_decode_seconds:,.0f} s to decode; it is refused")
        if index >= max_frames:
            raise MediaError(f"video has more than {max_frames:,} frames within its duration limit")
        _check_pixels(frame.width, frame.height, limits)
        seconds = frame.time if frame.time is not None else (index / rate if rate else index * interval)
        origin = seconds if origin is None else origin
        # Clamp: broken files can step back in time; a frame never starts before its predecessor.
        now = max(seconds - origin, last)
        if now > limits.max_duration:
            raise MediaError(_too_long(now, limits))
        if held is not None and next_sample < now - _EPSILON:
            yield _frame(*held)
            next_sample = _next_sample_at(now, interval)
        held, last = (frame, index, now), now
    if held is None:
        raise MediaError("video holds no decodable frames")
    frame, index, now = held
    # The last frame stays on screen for its duration where the file gives one, else an instant.
    shown_for = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 0.0
    _check_complete(container, stream, index + 1, now + shown_for)
    if next_sample < now + shown_for - _EPSILON or next_sample <= now + _EPSILON:
        yield _frame(*held)


def _check_complete(
    container: av.container.InputContainer, stream: av.VideoStream, decoded: int, seconds: float
) -> None:
    """Refuse a file that ends well before its header says: FFmpeg decodes a truncated WebM or AVI
    without an error, and hashing half a video as if it were whole would under-report it.

    Checked where the header declares it: the frame count (MP4/MOV, AVI), or the duration of a file
    holding only the video stream (WebM). Truncated GIFs and streamed files declare neither.
    """
    declared_frames = stream.frames or 0
    if decoded < declared_frames * _COMPLETE_SHARE - 1:
        raise MediaError(
            f"video data is truncated: {decoded:,} of the {declared_frames:,} frames it declares decoded"
        )
    if len(container.streams) == 1 and container.duration:
        declared = container.duration / av.time_base
        if seconds < declared * _COMPLETE_SHARE - 1.0:
            raise MediaError(
                f"video data is truncated: {seconds:,.1f} s of the {declared:,.1f} s it declares decoded"
            )


def _next_sample_at(now: float, interval: float) -> float:
    """The first multiple of `interval` at or after `now`."""
    steps = int(np.ceil((now - _EPSILON) / interval))
    return steps * interval


def _frame(frame: av.VideoFrame, index: int, timestamp: float) -> VideoFrame:
    return VideoFrame(index, timestamp, _luma(frame))


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """Float32 luma 0-255, as the BT.601 luma of the frame converted to RGB would be.

    For YUV frames that is the Y plane itself (stretched from 16-235 when limited range), which
    skips the colour conversion; other formats (GIF palettes, RGB codecs) are converted by
    FFmpeg to 8-bit grey, which uses the same BT.601 weights.
    """
    name = frame.format.name
    if name in _LIMITED_RANGE_Y or name in _FULL_RANGE_Y:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        luma = rows[: frame.height, : frame.width].astype(np.float32)
        if name in _LIMITED_RANGE_Y and frame.color_range != _COLOR_RANGE_JPEG:
            luma *= _STUDIO_SCALE
            luma += _STUDIO_OFFSET
            np.clip(luma, 0.0, 255.0, out=luma)
        return luma
    return frame.to_ndarray(format="gray").astype(np.float32)


def _reason(exc: BaseException) -> str:
    # FFmpeg errors carry "[Errno N] text: 'filename'"; the text alone is what a user can act on.
    if isinstance(exc, av.FFmpegError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
