"""Agreement with Meta's reference vPDQ (the PyPI `vpdq` binding of the C++ code) on the same videos:
the same frames sampled, and per frame a PDQ hash within distance 10 where both rate quality >= 80
(PDQ's own conformance bar)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hashhub.signals.pdq import PdqSignal
from hashhub.signals.vpdq import VpdqSignal
from tests.support import video_clips as clips

vpdq = pytest.importorskip("vpdq", reason="the reference binding `vpdq` is not installed")


def _videos(corpus: Path) -> dict[str, bytes]:
    photos = sorted((corpus / "photos").glob("*.jpg"))
    kodak = corpus / "kodak"
    return {
        "slideshow.mp4": clips.encode(clips.slideshow_frames(photos[40:46], 2.0, 5, (480, 360)), fps=5),
        "pan.mp4": clips.encode(clips.pan_frames(kodak / "05.png", 5.0, 10, (480, 320)), fps=10),
        "pan.webm": clips.encode(clips.pan_frames(kodak / "12.png", 5.0, 10, (480, 320)), clips.WEBM, fps=10),
        "slideshow.avi": clips.encode(clips.slideshow_frames(photos[60:64], 2.0, 5), clips.AVI, fps=5),
    }


def test_frames_agree_with_the_reference_binding(corpus: Path, tmp_path: Path) -> None:
    compared = 0
    for name, data in _videos(corpus).items():
        path = tmp_path / name  # the binding reads files; hashhub hashes the bytes in memory
        path.write_bytes(data)
        reference = {f.frame_number: f for f in vpdq.computeHash(str(path), seconds_per_hash=1.0)}
        ours = VpdqSignal.hash_frames(data)
        assert ours, name
        for frame in ours:
            # Every frame we keep is one the reference samples, at the same time.
            assert frame.frame in reference, (name, frame.frame, sorted(reference))
            theirs = reference[frame.frame]
            assert frame.timestamp == pytest.approx(theirs.timestamp, abs=1e-3)
            if frame.quality >= 80 and theirs.quality >= 80:
                assert PdqSignal.distance(frame.pdq, theirs.hex) <= 10, (name, frame.frame)
                compared += 1
        # The frames we drop are repeats or of quality < 50, by the reference's own measure too.
        kept = {f.frame for f in ours}
        for number, theirs in reference.items():
            if number not in kept and theirs.quality >= 50:
                previous = max(f for f in kept if f < number)
                earlier = next(f for f in ours if f.frame == previous)
                assert PdqSignal.distance(earlier.pdq, theirs.hex) <= 10, (name, number)
    assert compared >= 15
