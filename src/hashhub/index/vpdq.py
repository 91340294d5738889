"""vPDQ index: which listed videos a query video matches, through one PdqIndex over all their frames.

    ix = VpdqIndex()
    ix.add(7, vpdq_value)                       # any form VpdqSignal.parse takes, frames, or codes
    ix.search(query_value)                      # [VideoMatch(id=7, query_share=1.0, listed_share=0.9, ...)]

Each listed video keeps its distinct PDQ codes of quality >= 50 (Meta's matching ignores the rest);
frame slot s of video v is stored under the id (v << 20) | s, so one PdqIndex (exact Hamming radius
search, incremental add/remove) holds every frame and a hit's video is its id >> 20. A search looks
up all of the query's distinct usable frames at once and counts, per video hit, how many query frames
found one of its frames and how many of its frames were found: exactly Meta's brute-force shares,
without comparing against videos that share no frame with the query.

Video ids are integers from 0 to 2**43 - 1; a video holds at most 2**20 distinct frames.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashhub.index import _fileformat
from hashhub.index._inputs import as_rows
from hashhub.index.errors import IndexFileError, IndexInputError
from hashhub.index.pdq import CODE_BYTES, PdqIndex
from hashhub.signals.vpdq import (
    FRAME_DISTANCE,
    LISTED_THRESHOLD,
    QUERY_THRESHOLD,
    VpdqFrame,
    VpdqSignal,
    frame_codes,
)

FRAME_BITS = 20
MAX_FRAMES_PER_VIDEO = 1 << FRAME_BITS
MAX_VIDEO_ID = (1 << (63 - FRAME_BITS)) - 1
_MAGIC = b"HHIXVPD1"

#: What `add` and `search` take for a video's frames: a vPDQ value in any form `VpdqSignal.parse`
#: accepts, a list of `VpdqFrame`, or an (n, 32) uint8 array of already-usable codes.
Frames = str | bytes | Sequence[VpdqFrame] | Sequence[dict[str, Any]] | np.ndarray


@dataclass(frozen=True, slots=True)
class VideoMatch:
    """A listed video the query matched, with the two shares vPDQ reports (0.0-1.0)."""

    id: int
    query_share: float
    listed_share: float
    #: distinct usable query frames within the radius of one of this video's frames, and in all
    query_matched: int
    query_frames: int
    #: distinct usable frames of this video within the radius of a query frame, and in all
    listed_matched: int
    listed_frames: int


def codes_of(frames: Frames) -> np.ndarray:
    """The distinct usable PDQ codes (n, 32) uint8 of a video's frames, in first-seen order."""
    if isinstance(frames, np.ndarray):
        rows = as_rows(frames, CODE_BYTES, "frame codes")
        _, first = np.unique(rows, axis=0, return_index=True)
        return rows[np.sort(first)]
    if isinstance(frames, list | tuple) and frames and all(isinstance(f, VpdqFrame) for f in frames):
        return frame_codes(list(frames))
    return frame_codes(VpdqSignal.frames(frames))


def _video_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value <= MAX_VIDEO_ID:
        raise IndexInputError(f"video ids must be integers from 0 to {MAX_VIDEO_ID}, got {value!r}.")
    return int(value)


def _share(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise IndexInputError(f"{what} must be a share from 0.0 to 1.0, got {value!r}.")
    return float(value)


def _slots(video_id: int, start: int, stop: int) -> np.ndarray:
    return (video_id << FRAME_BITS) | np.arange(start, stop, dtype=np.int64)


class VideoCounts:
    """Distinct usable frames stored per video, without a Python object per video: a sorted base of
    (id, count) arrays (memory-mapped from a saved file, or rebuilt by a merge) plus a small dict of
    recent changes (0 = removed) folded into a new base once it outgrows `delta_limit`. Readers take
    the (ids, counts, delta) triple in one attribute read; one writer at a time (VpdqIndex's lock)."""

    def __init__(
        self, ids: np.ndarray | None = None, counts: np.ndarray | None = None, delta_limit: int = 4096
    ) -> None:
        ids = np.empty(0, np.int64) if ids is None else ids
        counts = np.empty(0, np.int64) if counts is None else counts
        self._state: tuple[np.ndarray, np.ndarray, dict[int, int]] = (ids, counts, {})
        self._delta_limit = delta_limit
        self._len = int(np.count_nonzero(counts))

    def __len__(self) -> int:
        return self._len

    def __contains__(self, video_id: object) -> bool:
        return isinstance(video_id, int | np.integer) and self.get(int(video_id)) > 0

    def get(self, video_id: int, default: int = 0) -> int:
        ids, counts, delta = self._state
        found = delta.get(video_id)
        if found is None:
            at = int(np.searchsorted(ids, video_id))
            found = int(counts[at]) if at < ids.shape[0] and ids[at] == video_id else 0
        return found or default

    def set(self, video_id: int, count: int) -> None:
        old = self.get(video_id)
        self._len += (count > 0) - (old > 0)
        delta = self._state[2]
        delta[video_id] = count
        if len(delta) > max(self._delta_limit, self._len // 8):
            self._state = (*self.arrays(), {})

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every stored video's (id, count), sorted by id."""
        ids, counts, delta = self._state
        if not delta:
            keep = counts > 0
            return ids[keep], counts[keep]
        new_ids = np.fromiter(delta, np.int64, len(delta))
        new_counts = np.fromiter(delta.values(), np.int64, len(delta))
        keep = ~np.isin(ids, new_ids)
        all_ids = np.concatenate([ids[keep], new_ids])
        all_counts = np.concatenate([counts[keep], new_counts])
        order = np.argsort(all_ids, kind="stable")
        all_ids, all_counts = all_ids[order], all_counts[order]
        live = all_counts > 0
        return all_ids[live], all_counts[live]


class VpdqIndex:
    """Listed videos by id; searches may run while one writer adds or removes videos."""

    def __init__(self) -> None:
        self._frames = PdqIndex()
        self._lock = threading.Lock()
        #: video id -> number of distinct usable frames stored (slots 0..n-1)
        self._counts = VideoCounts()

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._counts

    def __repr__(self) -> str:
        return f"<VpdqIndex {len(self._counts)} videos, {len(self._frames)} frames>"

    @property
    def frame_count(self) -> int:
        """Distinct usable frames stored over all videos."""
        return len(self._frames)

    # -- writes -------------------------------------------------------------------------------------

    def add(self, video_id: int, frames: Frames) -> None:
        """Insert or replace one video's frames."""
        self.add_many([(video_id, frames)])

    def add_many(self, videos: Iterable[tuple[int, Frames]]) -> None:
        """Insert or replace many videos in one index update (the fast way to load a list)."""
        batch: dict[int, np.ndarray] = {}
        for video_id, frames in videos:
            key = _video_id(video_id)
            codes = codes_of(frames)
            if len(codes) > MAX_FRAMES_PER_VIDEO:
                raise IndexInputError(
                    f"video {key} has {len(codes):,} distinct frames; the limit is {MAX_FRAMES_PER_VIDEO:,}."
                )
            batch[key] = codes
        if not batch:
            return
        ids = np.concatenate([_slots(key, 0, len(codes)) for key, codes in batch.items()])
        codes = np.concatenate(list(batch.values())) if ids.size else np.empty((0, CODE_BYTES), np.uint8)
        with self._lock:
            # Upsert the new slots first, then drop slots a shorter replacement no longer uses, so a
            # concurrent search never finds a replaced video missing.
            self._frames.add(ids, codes)
            stale = [
                _slots(key, len(new), self._counts.get(key))
                for key, new in batch.items()
                if self._counts.get(key) > len(new)
            ]
            if stale:
                self._frames.remove(np.concatenate(stale))
            for key, new in batch.items():
                self._counts.set(key, len(new))

    def remove(self, video_ids: Iterable[int] | int) -> None:
        """Remove these videos (one id or many); unknown ids are ignored."""
        if isinstance(video_ids, int | np.integer):
            video_ids = [int(video_ids)]
        with self._lock:
            keys = [key for key in map(_video_id, video_ids) if key in self._counts]
            gone = [_slots(key, 0, self._counts.get(key)) for key in keys]
            for key in keys:
                self._counts.set(key, 0)
            if gone:
                self._frames.remove(np.concatenate(gone))

    def compact(self) -> None:
        """Merge recent additions into the frame index's tables now (normally automatic)."""
        self._frames.compact()

    # -- files --------------------------------------------------------------------------------------

    @staticmethod
    def videos_path(path: str | os.PathLike[str]) -> Path:
        """The second file `save` writes beside `path`: each video's id and frame count."""
        target = Path(path)
        return target.with_name(target.name + ".videos")

    def save(self, path: str | os.PathLike[str]) -> list[Path]:
        """Write the frame index to `path` and the videos' frame counts beside it (see
        `videos_path`); returns both paths. Each file is replaced atomically."""
        with self._lock:  # one consistent (frames, counts) pair: writers wait for the save
            ids, counts = self._counts.arrays()
            self._frames.save(path)
        meta = {"videos": int(ids.shape[0])}
        _fileformat.write(self.videos_path(path), _MAGIC, meta, {"ids": ids, "counts": counts})
        return [Path(path), self.videos_path(path)]

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> VpdqIndex:
        """Reopen a saved index (its frame index memory-mapped when `mmap`)."""
        _, arrays = _fileformat.read(cls.videos_path(path), _MAGIC, mmap=mmap)
        ids, counts = arrays["ids"], arrays["counts"]
        if ids.shape != counts.shape:
            raise IndexFileError(f"{cls.videos_path(path)} is damaged: ids and counts differ in length.")
        ix = cls()
        ix._frames = PdqIndex.load(path, mmap=mmap)
        if ids.shape[0] > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            raise IndexFileError(f"{cls.videos_path(path)} is damaged: its video ids are not sorted.")
        ix._counts = VideoCounts(ids, counts)
        if int(counts.sum()) != len(ix._frames):
            raise IndexFileError(f"{path} and its .videos file do not belong together (frame counts differ).")
        return ix

    # -- reads --------------------------------------------------------------------------------------

    def search(
        self,
        query: Frames,
        radius: int = FRAME_DISTANCE,
        query_threshold: float = QUERY_THRESHOLD,
        listed_threshold: float = LISTED_THRESHOLD,
    ) -> list[VideoMatch]:
        """Listed videos matching `query`, best first (query share, then listed share, then id).

        A video matches when at least `query_threshold` of the query's distinct usable frames are
        within `radius` bits of one of its frames, and at least `listed_threshold` of its frames
        are within `radius` of a query frame. A query without usable frames matches nothing.
        """
        return self.search_many([query], radius, query_threshold, listed_threshold)[0]

    def search_many(
        self,
        queries: Sequence[Frames],
        radius: int = FRAME_DISTANCE,
        query_threshold: float = QUERY_THRESHOLD,
        listed_threshold: float = LISTED_THRESHOLD,
    ) -> list[list[VideoMatch]]:
        """`search` for several query videos with one frame lookup; one list of matches per query."""
        query_min = _share(query_threshold, "query_threshold")
        listed_min = _share(listed_threshold, "listed_threshold")
        per_query = [codes_of(q) for q in queries]
        sizes = [len(codes) for codes in per_query]
        everything = np.concatenate(per_query) if per_query else np.empty((0, CODE_BYTES), np.uint8)
        hits = self._frames.search(everything, radius) if len(everything) else []
        counts = self._counts
        results, start = [], 0
        for size in sizes:
            found = hits[start : start + size]
            start += size
            results.append(self._score(found, size, counts, query_min, listed_min))
        return results

    @staticmethod
    def _score(
        found: list[tuple[np.ndarray, np.ndarray]],
        size: int,
        counts: VideoCounts,
        query_min: float,
        listed_min: float,
    ) -> list[VideoMatch]:
        if not size:
            return []
        lengths = np.fromiter((len(ids) for ids, _ in found), np.int64, size)
        if not lengths.sum():
            return []
        frame_ids = np.concatenate([ids for ids, _ in found])
        query_rows = np.repeat(np.arange(size, dtype=np.int64), lengths)
        videos = frame_ids >> FRAME_BITS
        # Query frames that found the video: distinct (video, query frame) pairs, counted per video.
        pairs = np.unique(videos * size + query_rows)
        hit_videos, query_matched = np.unique(pairs // size, return_counts=True)
        # The video's frames that were found: distinct frame ids, counted per video.
        _, listed_matched = np.unique(np.unique(frame_ids) >> FRAME_BITS, return_counts=True)
        matches = []
        for video, q_hits, l_hits in zip(
            hit_videos.tolist(), query_matched.tolist(), listed_matched.tolist(), strict=True
        ):
            total = counts.get(video)
            if not total:
                continue  # removed while this search ran
            query_share, listed_share = q_hits / size, min(l_hits / total, 1.0)
            if query_share >= query_min and listed_share >= listed_min:
                matches.append(VideoMatch(video, query_share, listed_share, q_hits, size, l_hits, total))
        matches.sort(key=lambda m: (-m.query_share, -m.listed_share, m.id))
        return matches
