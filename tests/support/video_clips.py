"""Videos the tests build from benign corpus photos with PyAV: slideshows, pans and edited copies.

Everything is encoded in memory; sizes are small (320x240, 10 fps) so a clip costs milliseconds.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

SIZE = (320, 240)
FPS = 10


@dataclass(frozen=True)
class Format:
    """A container and the codec the tests write into it."""

    container: str
    codec: str
    pix_fmt: str


MP4 = Format("mp4", "libx264", "yuv420p")
WEBM = Format("webm", "libvpx-vp9", "yuv420p")
WEBM_VP8 = Format("webm", "libvpx", "yuv420p")
MOV = Format("mov", "libx264", "yuv420p")
AVI = Format("avi", "mjpeg", "yuvj420p")
GIF = Format("gif", "gif", "rgb8")


def load_photo(path: Path, size: tuple[int, int] = SIZE) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR))


def slideshow_frames(
    photos: Sequence[Path], seconds_each: float = 2.0, fps: int = FPS, size: tuple[int, int] = SIZE
) -> Iterator[np.ndarray]:
    """Each photo held still for `seconds_each` seconds."""
    for path in photos:
        picture = load_photo(path, size)
        for _ in range(round(seconds_each * fps)):
            yield picture


def pan_frames(
    path: Path, seconds: float = 6.0, fps: int = FPS, size: tuple[int, int] = SIZE
) -> Iterator[np.ndarray]:
    """A window of `size` sliding left to right across a larger photo (e.g. a 768x512 Kodak image)."""
    with Image.open(path) as image:
        big = np.asarray(image.convert("RGB"))
    width, height = size
    top = (big.shape[0] - height) // 2
    steps = round(seconds * fps)
    for i in range(steps):
        left = round(i * (big.shape[1] - width) / max(steps - 1, 1))
        yield big[top : top + height, left : left + width]


def drifting_slideshow_frames(
    photos: Sequence[Path], seconds_each: float = 3.0, fps: int = FPS, size: tuple[int, int] = SIZE
) -> Iterator[np.ndarray]:
    """Each photo enlarged by 10% with the frame drifting slowly across it (camera-like motion)."""
    width, height = size
    big_size = (round(width * 1.1), round(height * 1.1))
    steps = round(seconds_each * fps)
    for path in photos:
        big = load_photo(path, big_size)
        for i in range(steps):
            share = i / max(steps - 1, 1)
            top, left = round(share * (big_size[1] - height)), round(share * (big_size[0] - width))
            yield big[top : top + height, left : left + width]


def encode(
    frames: Iterable[np.ndarray],
    fmt: Format = MP4,
    fps: int = FPS,
    bitrate: int | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> bytes:
    """Encode RGB frames; the size is taken from the first frame. `options` replace the fast
    encoder settings used by default (e.g. {"preset": "veryfast"} for a typical H.264 stream);
    `container_options` go to the muxer (e.g. {"live": "1"}: a WebM as streamed, no duration)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt.container, options=container_options or {}) as container:
        stream = None
        for rgb in frames:
            if stream is None:
                stream = container.add_stream(fmt.codec, rate=Fraction(fps))
                stream.height, stream.width = rgb.shape[:2]
                stream.pix_fmt = fmt.pix_fmt
                if bitrate:
                    stream.bit_rate = bitrate
                if options is not None:
                    stream.options = options
                elif fmt.codec == "libx264":
                    stream.options = {"preset": "ultrafast"}
                elif fmt.codec.startswith("libvpx"):
                    # One thread: libvpx's VP8 threads contend and run 20x slower on a small machine.
                    stream.options = {"deadline": "realtime", "cpu-used": "8", "threads": "1"}
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        if stream is None:
            raise ValueError("no frames to encode")
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def decode_rgb(data: bytes) -> Iterator[np.ndarray]:
    """Every frame as RGB, streamed (a long HD video would not fit in memory as one list)."""
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(container.streams.video[0]):
            yield frame.to_ndarray(format="rgb24")


def probe(data: bytes) -> tuple[int, float]:
    """(number of frames, frame rate), from the packets without decoding."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        count = sum(1 for packet in container.demux(stream) if packet.size)
        return count, float(stream.average_rate)


def transcode(
    data: bytes,
    fmt: Format = MP4,
    *,
    bitrate: int | None = None,
    scale: float = 1.0,
    crop: float = 0.0,
    keep: tuple[float, float] = (0.0, 1.0),
    options: dict[str, str] | None = None,
) -> bytes:
    """Decode and re-encode, the way a copy gets edited: `crop` trims that share off every side,
    `scale` resizes, `keep` is the (start, end) share of the frames kept (trimming)."""
    count, fps = probe(data)
    first, last = round(keep[0] * count), round(keep[1] * count)
    even = fmt.pix_fmt.startswith("yuv")  # 4:2:0 chroma needs even sizes

    def edited() -> Iterator[np.ndarray]:
        for number, rgb in enumerate(decode_rgb(data)):
            if not first <= number < last:
                continue
            height, width = rgb.shape[:2]
            dy, dx = round(height * crop), round(width * crop)
            picture = rgb[dy : height - dy, dx : width - dx]
            if scale != 1.0:
                size = (round(picture.shape[1] * scale), round(picture.shape[0] * scale))
                if even:
                    size = (size[0] // 2 * 2, size[1] // 2 * 2)
                picture = np.asarray(Image.fromarray(picture).resize(size, Image.Resampling.BILINEAR))
            elif even:
                picture = picture[: picture.shape[0] // 2 * 2, : picture.shape[1] // 2 * 2]
            yield picture

    return encode(edited(), fmt, fps=round(fps), bitrate=bitrate, options=options)
