"""vPDQ speed: video seconds hashed per wall second (hashhub vs Meta's `vpdq` binding), and the time
to match a 60 s video against 1M listed frames.

    .venv/bin/python benchmarks/video_speed.py [--seconds 60] [--size 1280x720] [--fps 30]
                                               [--listed-frames 1000000] [--threads N]

Set-up (all made at run time from benign corpus photos):
  - a `--seconds` long H.264 video (`--size`, `--fps`, x264 preset veryfast, default GOP), a slideshow
    of photos each enlarged and drifting slowly (so frames change as in camera footage);
  - hashhub: `VpdqSignal.hash_frames(bytes)` (decoded from memory, 1 frame a second); and
    `hash_frames_each(bytes, [None, trim_frame])`, the plain and the per-frame-trimmed vPDQ from one
    decode (what scans with trimming on compute), on the same video and on a pillarboxed copy;
  - vpdq: `vpdq.computeHash(path)` (Meta's C++ via its Cython binding; it reads a file, so the video
    is written to a temporary file first, outside the timing), 1 frame a second, threads auto;
  - agreement: per frame number both kept, the PDQ distance, over frames of quality >= 80 in both;
  - matching: a VpdqIndex holding `--listed-frames` frames, random PDQ codes in 60-frame videos plus
    the benchmark video itself; the query is hashhub's hash of a copy re-encoded at half the
    bitrate. Reported: load time, and the median of 5 searches (radius 31, thresholds 80% / 0%)
    for that query and for an unrelated 60-frame query.

`--threads`: FFmpeg decoding threads for both (0 = FFmpeg's choice). Prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the video builders live with the tests

from tests.support import video_clips

from hashhub.index.vpdq import VpdqIndex
from hashhub.media.trim import trim_frame
from hashhub.signals.pdq import PdqSignal
from hashhub.signals.vpdq import VpdqSignal

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FRAMES_PER_LISTED_VIDEO = 60
ENCODER = {"preset": "veryfast"}  # x264's speed/quality trade-off typical of uploads


def make_video(seconds: int, size: tuple[int, int], fps: int, bitrate: int | None = None) -> bytes:
    photos = sorted((CORPUS / "photos").glob("*.jpg"))[::37]
    per_photo = 3.0
    needed = int(np.ceil(seconds / per_photo))
    frames = video_clips.drifting_slideshow_frames(photos[:needed], per_photo, fps, size)
    return video_clips.encode(frames, video_clips.MP4, fps=fps, bitrate=bitrate, options=ENCODER)


def time_hashhub(data: bytes) -> tuple[float, list]:
    start = time.perf_counter()
    frames = VpdqSignal.hash_frames(data)
    return time.perf_counter() - start, frames


def time_trimmed(data: bytes) -> tuple[float, int]:
    """Wall time of the plain and trimmed vPDQ from one decode; how many frames differ."""
    start = time.perf_counter()
    plain, trimmed = VpdqSignal.hash_frames_each(data, [None, trim_frame])
    return time.perf_counter() - start, sum(a != b for a, b in zip(plain, trimmed, strict=False))


def pillarboxed(seconds: int, size: tuple[int, int], fps: int) -> bytes:
    """The same kind of slideshow, its picture 3/4 of the frame's width between black bars."""
    inner = (size[0] * 3 // 4 // 2 * 2, size[1])
    photos = sorted((CORPUS / "photos").glob("*.jpg"))[::37]
    needed = int(np.ceil(seconds / 3.0))
    left = (size[0] - inner[0]) // 2

    def frames():
        for rgb in video_clips.drifting_slideshow_frames(photos[:needed], 3.0, fps, inner):
            canvas = np.zeros((size[1], size[0], 3), np.uint8)
            canvas[:, left : left + inner[0]] = rgb
            yield canvas

    return video_clips.encode(frames(), video_clips.MP4, fps=fps, options=ENCODER)


def time_reference(data: bytes, threads: int) -> tuple[float, list] | tuple[None, None]:
    try:
        import vpdq
    except ImportError:
        return None, None
    with tempfile.NamedTemporaryFile(suffix=".mp4") as handle:
        handle.write(data)
        handle.flush()
        start = time.perf_counter()
        features = vpdq.computeHash(handle.name, seconds_per_hash=1.0, thread_count=threads)
        return time.perf_counter() - start, features


def agreement(ours: list, reference: list) -> dict:
    by_frame = {f.frame: f for f in ours}
    distances = [
        PdqSignal.distance(by_frame[r.frame_number].pdq, r.hex)
        for r in reference
        if r.frame_number in by_frame and r.quality >= 80 and by_frame[r.frame_number].quality >= 80
    ]
    return {
        "frames_compared": len(distances),
        "max_distance": max(distances, default=None),
        "mean_distance": round(statistics.fmean(distances), 2) if distances else None,
    }


def build_index(listed_frames: int, real: list) -> tuple[VpdqIndex, float]:
    rng = np.random.default_rng(7)
    random_frames = max(listed_frames - len(real), 0)
    videos = random_frames // FRAMES_PER_LISTED_VIDEO
    codes = rng.integers(0, 256, size=(videos * FRAMES_PER_LISTED_VIDEO, 32), dtype=np.uint8)
    start = time.perf_counter()
    ix = VpdqIndex()
    ix.add_many(
        (i + 1, codes[i * FRAMES_PER_LISTED_VIDEO : (i + 1) * FRAMES_PER_LISTED_VIDEO]) for i in range(videos)
    )
    ix.add(0, real)
    ix.compact()  # time the index as it serves, not with a merge pending
    return ix, time.perf_counter() - start


def time_search(ix: VpdqIndex, query, repeats: int = 5) -> tuple[float, list]:
    times, matches = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        matches = ix.search(query)
        times.append(time.perf_counter() - start)
    return statistics.median(times), matches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--listed-frames", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))

    start = time.perf_counter()
    video = make_video(args.seconds, size, args.fps)
    made_in = time.perf_counter() - start
    bitrate = len(video) * 8 // args.seconds
    copy = video_clips.transcode(video, video_clips.MP4, bitrate=bitrate // 2, options=ENCODER)

    ours_s, ours = time_hashhub(video)
    trim_s, trim_changed = time_trimmed(video)
    boxed = pillarboxed(args.seconds, size, args.fps)
    boxed_plain_s, _ = time_hashhub(boxed)
    boxed_trim_s, boxed_changed = time_trimmed(boxed)
    ref_s, ref = time_reference(video, args.threads)
    query = VpdqSignal.hash_frames(copy)

    ix, load_s = build_index(args.listed_frames, ours)
    hit_s, hits = time_search(ix, query)
    rng = np.random.default_rng(11)
    unrelated = rng.integers(0, 256, size=(FRAMES_PER_LISTED_VIDEO, 32), dtype=np.uint8)
    miss_s, misses = time_search(ix, unrelated)

    print(
        json.dumps(
            {
                "benchmark": "video_speed",
                "video": {
                    "seconds": args.seconds,
                    "size": args.size,
                    "fps": args.fps,
                    "codec": "h264 (x264 veryfast)",
                    "bytes": len(video),
                    "made_in_s": round(made_in, 1),
                },
                "cpu_count": os.cpu_count(),
                "hashhub": {
                    "wall_s": round(ours_s, 3),
                    "video_seconds_per_s": round(args.seconds / ours_s, 1),
                    "frames_kept": len(ours),
                },
                "hashhub_with_trimmed_frames": {
                    "wall_s": round(trim_s, 3),
                    "frames_changed_by_trim": trim_changed,
                    "pillarboxed_plain_wall_s": round(boxed_plain_s, 3),
                    "pillarboxed_wall_s": round(boxed_trim_s, 3),
                    "pillarboxed_frames_changed_by_trim": boxed_changed,
                },
                "vpdq_binding": None
                if ref_s is None
                else {
                    "wall_s": round(ref_s, 3),
                    "video_seconds_per_s": round(args.seconds / ref_s, 1),
                    "frames": len(ref),
                },
                "agreement_quality_80": agreement(ours, ref) if ref else None,
                "match": {
                    "listed_frames": ix.frame_count,
                    "listed_videos": len(ix),
                    "load_s": round(load_s, 2),
                    "query_frames": len(query),
                    "hit_ms": round(hit_s * 1000, 2),
                    "hit": [
                        {
                            "id": m.id,
                            "query_share": round(m.query_share, 3),
                            "listed_share": round(m.listed_share, 3),
                        }
                        for m in hits
                    ],
                    "miss_ms": round(miss_s * 1000, 2),
                    "false_matches": len(misses),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
