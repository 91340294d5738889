"""Image bombs sent to the agent's upload path are refused fast, with the reason, and nothing is decoded.

The decoder limits themselves are unit-tested in tests/test_media.py and tests/test_video.py; this is
what a platform calling `POST /api/v1/scan` sees.
"""

from __future__ import annotations

import struct
import time
import zlib

import pytest

from .conftest import AGENT_KEY, bearer


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int) -> bytes:
    """A few hundred bytes claiming side x side grey pixels (10^10 at 100,000): a decompression bomb."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side + 1) * 4, 9)  # a few rows; decoding would need all of them
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )


def gif_bomb() -> bytes:
    """A GIF whose logical screen and frame claim 65,535 x 65,535 pixels."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x02\x02\x44\x01\x00"
    return screen + frame + b"\x3b"


@pytest.mark.parametrize(("name", "data"), [("bomb.png", png_bomb(100_000)), ("bomb.gif", gif_bomb())])
def test_image_bombs_are_refused_fast_with_the_reason(agent_client, name: str, data: bytes) -> None:
    client = agent_client()
    started = time.perf_counter()
    r = client.post("/api/v1/scan", headers=bearer(AGENT_KEY), files={"file": (name, data, "image/png")})
    elapsed = time.perf_counter() - started
    assert elapsed < 3, f"{name} took {elapsed:.1f} s"
    assert r.status_code in (200, 422), r.text
    body = r.json()
    reason = body.get("error") or body.get("detail") or ""
    assert "over the limit" in str(reason), body
    if r.status_code == 200:  # still checked on its exact hashes, never matched by a decode
        assert body["matched"] is False


@pytest.mark.parametrize(("name", "data"), [("bomb.png", png_bomb(100_000)), ("bomb.gif", gif_bomb())])
def test_hub_media_match_refuses_image_bombs_fast(hub_client, name: str, data: bytes) -> None:
    client, keys = hub_client()
    started = time.perf_counter()
    r = client.post(
        "/api/v1/match/media",
        content=data,
        headers={**bearer(keys["member"]), "content-type": "application/octet-stream"},
    )
    assert time.perf_counter() - started < 3
    assert r.status_code == 200, r.text  # checked on its exact hashes only, with the reason
    assert "over the limit" in r.json()["error"]
    assert r.json()["matches"] == []


def test_video_decoding_stops_at_its_wall_clock_deadline() -> None:
    import numpy as np

    from hashhub.media import MediaError
    from hashhub.media.video import VideoLimits, sample_frames
    from tests.support.video_clips import encode

    frames = [np.full((64, 64, 3), i * 8, dtype=np.uint8) for i in range(30)]
    clip = encode(frames)
    assert len(list(sample_frames(clip))) >= 1  # decodes normally under the default deadline
    with pytest.raises(MediaError, match="to decode; it is refused"):
        list(sample_frames(clip, limits=VideoLimits(max_decode_seconds=1e-9)))
