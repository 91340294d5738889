"""vPDQ: Meta's video fingerprint, a PDQ hash per sampled frame, matched as a bag of frames.

Canonical (stored) form: Meta's vPDQ hash-file lines, one frame a line, joined by "\\n":

    frame,quality,pdqhex,timestamp        e.g. 0,100,f8f8...9b22,0.000

(frame number in decode order, PDQ quality 0-100, 64 lowercase hex, seconds with 3 decimals), the
format Meta's `vpdq-hash-video` writes and reads. `parse` also takes the JSON shown in items and the
feed (`present`), `[{"frame": 0, "quality": 100, "pdq": "<64 hex>", "timestamp": 0.0}, ...]`, that
list as a JSON string, and python-threatexchange's compact strings `pdqhex,quality,timestamp`.

Hashing (`hash_video`): one frame a second by default (`hashhub.media.video` decodes), PDQ per frame,
frames of quality below 50 dropped, a frame whose hash equals the previous kept frame's dropped.

Matching (Meta's algorithm; `hashhub.index.vpdq` does it over many listed videos): frames of quality
below 50 are ignored and each side is reduced to its distinct hashes. The query share is the part of
the query's frames within PDQ distance 31 of some listed frame, the listed share the part of the
listed video's frames within 31 of some query frame. A query matches when its query share is at
least 80% and its listed share at least 0% (both configurable in the index). `distance(query,
listed)` is 1 - query share, so `matches` with the default threshold is that rule; it is not
symmetric: the first argument is the query.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hashhub.signals import pdq_hasher
from hashhub.signals.base import Hashed, SignalError, SignalType, _preview
from hashhub.signals.pdq import MATCH_THRESHOLD, MIN_QUALITY, PdqSignal
from hashhub.signals.video_base import VideoHasher

if TYPE_CHECKING:
    from hashhub.media.video import VideoLimits

#: A hook on each sampled frame's luma (H x W float32) before its PDQ: returns the array to hash.
FrameTransform = Callable[[np.ndarray], np.ndarray]
#: A query matches a listed video when at least this share of its frames match ...
QUERY_THRESHOLD = 0.8
#: ... and at least this share of the listed video's frames are matched.
LISTED_THRESHOLD = 0.0
#: Per-frame PDQ match distance and the quality below which a frame is ignored, as for images.
FRAME_DISTANCE = MATCH_THRESHOLD
FRAME_MIN_QUALITY = MIN_QUALITY
TIMESTAMP_DECIMALS = 3
#: Most frames one value may hold: 55 hours at one frame a second.
MAX_FRAMES = 200_000
_MAX_FRAME_NUMBER = 2**31 - 1
# A canonical line is at most 10 + 1 + 3 + 1 + 64 + 1 + ~12 characters; refuse far longer input early.
_MAX_TEXT = MAX_FRAMES * 128
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class VpdqFrame:
    """One frame's PDQ hash, as Meta's vPDQ files describe it."""

    frame: int
    quality: int
    pdq: str
    timestamp: float

    def line(self) -> str:
        return f"{self.frame},{self.quality},{self.pdq},{self.timestamp:.{TIMESTAMP_DECIMALS}f}"

    def as_dict(self) -> dict[str, Any]:
        return {"frame": self.frame, "quality": self.quality, "pdq": self.pdq, "timestamp": self.timestamp}


class VpdqSignal(SignalType, VideoHasher):
    name = "vpdq"
    media = frozenset({"video"})
    # Its own kind: a value is many PDQ frames, searched through `hashhub.index.vpdq.VpdqIndex`
    # (a PdqIndex over every listed frame), not as one code. (`IndexKind` in base predates it.)
    index_kind = "video"  # type: ignore[assignment]
    threshold = 1.0 - QUERY_THRESHOLD
    examples = (
        "0,100,f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,0.000\n"
        "25,98,6526f4b36748a99e9ce60e4b212171b159dead4eac31563ceb16a51356eb198d,1.000",
        "0,87,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,0.000",
    )

    # -- values ------------------------------------------------------------------------------------

    @classmethod
    def parse(cls, value: object) -> str:
        return "\n".join(frame.line() for frame in cls.frames(value))

    @classmethod
    def present(cls, canonical: str) -> list[dict[str, Any]]:
        return [frame.as_dict() for frame in cls.frames(canonical)]

    @classmethod
    def frames(cls, value: object) -> list[VpdqFrame]:
        """The frames of any form `parse` accepts (canonical text included), or `SignalError`."""
        if isinstance(value, list | tuple):
            items: list[Any] = list(value)
        else:
            text = cls._text(value)
            if len(text) > _MAX_TEXT:
                raise cls.error(f"value is {len(text):,} characters long; the limit is {_MAX_TEXT:,}")
            items = cls._json_list(text) if text.startswith("[") else text.splitlines()
        items = [item for item in items if not (isinstance(item, str) and not item.strip())]
        if not items:
            raise cls.error("value holds no frames")
        if len(items) > MAX_FRAMES:
            raise cls.error(f"value holds {len(items):,} frames; the limit is {MAX_FRAMES:,}")
        return [cls._frame(position, item) for position, item in enumerate(items)]

    @classmethod
    def _json_list(cls, text: str) -> list[Any]:
        try:
            items = json.loads(text)
        except (ValueError, RecursionError):
            raise cls.error(f"value starts with '[' but is not valid JSON: {_preview(text)}") from None
        if not isinstance(items, list):
            raise cls.error("a JSON value must be a list of frames")
        return items

    @classmethod
    def _frame(cls, position: int, item: object) -> VpdqFrame:
        where = f"frame {position + 1}"
        if isinstance(item, dict):
            missing = sorted({"pdq", "quality", "timestamp"} - item.keys())
            if missing:
                raise cls.error(f"{where} lacks {', '.join(missing)}: {_preview(item)}")
            fields = (item.get("frame", position), item["quality"], item["pdq"], item["timestamp"])
        elif isinstance(item, str):
            parts = [part.strip() for part in item.split(",")]
            if len(parts) == 4:  # Meta's file line: frame,quality,pdq,timestamp
                fields = (parts[0], parts[1], parts[2], parts[3])
            elif len(parts) == 3:  # python-threatexchange's compact form: pdq,quality,timestamp
                fields = (position, parts[1], parts[0], parts[2])
            else:
                raise cls.error(
                    f"{where}: expected 'frame,quality,pdqhex,timestamp', got {len(parts)} fields in "
                    f"{_preview(item)}"
                )
        else:
            raise cls.error(f"{where}: expected an object or a text line, got {type(item).__name__}")
        frame, quality, pdq, timestamp = fields
        return VpdqFrame(
            cls._integer(where, "frame number", frame, _MAX_FRAME_NUMBER),
            cls._integer(where, "quality", quality, 100),
            cls._pdq(where, pdq),
            cls._seconds(where, timestamp),
        )

    @classmethod
    def _integer(cls, where: str, what: str, value: object, top: int) -> int:
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise cls.error(f"{where}: {what} must be an integer from 0 to {top}, got {_preview(value)}")
        return value

    @classmethod
    def _pdq(cls, where: str, value: object) -> str:
        try:
            return PdqSignal.parse(value)
        except SignalError as exc:
            raise cls.error(f"{where}: PDQ hash: {exc.problem}") from None

    @classmethod
    def _seconds(cls, where: str, value: object) -> float:
        seconds: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str):
            try:
                seconds = float(value)
            except ValueError:
                seconds = None
        if seconds is None or not math.isfinite(seconds) or seconds < 0:
            raise cls.error(f"{where}: timestamp must be a number of seconds >= 0, got {_preview(value)}")
        return round(seconds, TIMESTAMP_DECIMALS)

    # -- matching ----------------------------------------------------------------------------------

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        """1 - the share of query `a`'s usable frames within distance 31 of a frame of listed `b`."""
        query_share, _ = shares(frame_codes(cls.frames(a)), frame_codes(cls.frames(b)))
        return 1.0 - query_share

    # -- hashing -----------------------------------------------------------------------------------

    @classmethod
    def hash_frames(
        cls,
        data: bytes,
        fps: float = 1.0,
        limits: VideoLimits | None = None,
        *,
        transform: FrameTransform | None = None,
    ) -> list[VpdqFrame]:
        """The frames kept from the video in `data`: quality >= 50, consecutive repeats dropped.

        `transform`: a hook applied to each sampled frame's luma before its PDQ (e.g.
        `hashhub.media.trim.trim_frame`, which cuts letterbox and pillarbox bars).
        """
        return cls.hash_frames_each(data, [transform], fps, limits)[0]

    @classmethod
    def hash_frames_each(
        cls,
        data: bytes,
        transforms: Sequence[FrameTransform | None],
        fps: float = 1.0,
        limits: VideoLimits | None = None,
    ) -> list[list[VpdqFrame]]:
        """`hash_frames` once per transform (None: the untouched frame), from ONE decode.

        A frame a transform leaves as it is (returns the same array) is hashed once for all.
        """
        from hashhub.media.video import sample_frames  # PyAV loads only when a video is hashed

        kept: list[list[VpdqFrame]] = [[] for _ in transforms]
        for sampled in sample_frames(data, fps=fps, limits=limits):
            timestamp = round(sampled.timestamp, TIMESTAMP_DECIMALS)
            hashed: dict[int, pdq_hasher.PdqResult] = {}
            for frames, transform in zip(kept, transforms, strict=True):
                luma = sampled.luma if transform is None else transform(sampled.luma)
                result = hashed.get(id(luma))
                if result is None:
                    result = hashed[id(luma)] = pdq_hasher.hash_luma(luma)
                if result.quality < FRAME_MIN_QUALITY or (frames and frames[-1].pdq == result.hash):
                    continue
                frames.append(VpdqFrame(sampled.index, result.quality, result.hash, timestamp))
        return kept

    @classmethod
    def hash_video(cls, data: bytes, fps: float = 1.0, limits: VideoLimits | None = None) -> Hashed:
        """Canonical vPDQ of the video; quality is the kept frames' mean. A video with no frame of
        quality >= 50 (blank, too flat) gives value None and quality 0."""
        return cls.hashed(cls.hash_frames(data, fps, limits))

    @classmethod
    def hashed(cls, kept: Sequence[VpdqFrame]) -> Hashed:
        """Frames from `hash_frames` as a `Hashed` value (what `hash_video` returns)."""
        if not kept:
            return Hashed(cls.name, None, 0)
        mean_quality = round(sum(frame.quality for frame in kept) / len(kept))
        return Hashed(cls.name, "\n".join(frame.line() for frame in kept), mean_quality)

    @classmethod
    def usable(cls, quality: int | None) -> bool:
        return quality is None or quality >= FRAME_MIN_QUALITY


def frame_codes(frames: list[VpdqFrame], min_quality: int = FRAME_MIN_QUALITY) -> np.ndarray:
    """The distinct PDQ codes, (n, 32) uint8, of the frames whose quality is at least `min_quality`,
    in first-seen order: what vPDQ matching compares."""
    hexes = dict.fromkeys(frame.pdq for frame in frames if frame.quality >= min_quality)
    if not hexes:
        return np.empty((0, 32), np.uint8)
    return np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(-1, 32)


def shares(query: np.ndarray, listed: np.ndarray, radius: int = FRAME_DISTANCE) -> tuple[float, float]:
    """(query share, listed share) for two sets of distinct codes, by brute force (small inputs).

    Empty sides share nothing: (0.0, 0.0)."""
    if not len(query) or not len(listed):
        return 0.0, 0.0
    distances = _POPCOUNT[query[:, None, :] ^ listed[None, :, :]].sum(axis=2, dtype=np.int32)
    close = distances <= radius
    return float(close.any(axis=1).mean()), float(close.any(axis=0).mean())
