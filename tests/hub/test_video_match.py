"""Videos in the hub: vPDQ items are stored, fed and matched, by fingerprint and by uploaded media.

The clips are slideshows of benign corpus photos built in memory; the test pretends one is listed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.hub.conftest import World
from tests.hub.test_sync import snapshot
from tests.support import video_clips

from hashhub.signals import VpdqSignal


@dataclass(frozen=True)
class Clips:
    listed: bytes
    reencoded: bytes
    unrelated: bytes
    listed_vpdq: str


@pytest.fixture(scope="module")
def clips(corpus: Path) -> Clips:
    photos = sorted((corpus / "photos").glob("*.jpg"))
    listed = video_clips.encode(video_clips.slideshow_frames(photos[:5], seconds_each=2.0))
    reencoded = video_clips.transcode(listed, video_clips.WEBM, scale=0.75)
    unrelated = video_clips.encode(video_clips.slideshow_frames(photos[40:45], seconds_each=2.0))
    return Clips(listed, reencoded, unrelated, VpdqSignal.hash_video(listed).value or "")


def video_item(clip: Clips, **extra: Any) -> dict[str, Any]:
    return {
        "external_id": "clip-1",
        "content_type": "video",
        "classification": {"scheme": "industry", "value": "A1"},
        "verification": {"reviewers": 1},
        "labels": {},
        "fingerprints": {"md5": hashlib.md5(clip.listed).hexdigest(), "vpdq": clip.listed_vpdq, **extra},
    }


def match_one(world: World, query: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    r = world.client("plat").post("/api/v1/match", json={"fingerprints": [query], **extra})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["matches"]


def test_a_video_item_is_fed_and_snapshotted_as_a_list_of_frames(world: World, clips: Clips) -> None:
    (item_id,) = world.submit_ok("iwf", [video_item(clips)])
    frames = VpdqSignal.present(clips.listed_vpdq)
    assert frames and set(frames[0]) == {"frame", "quality", "pdq", "timestamp"}
    (change,) = world.feed()["changes"]
    assert change["item"]["id"] == item_id and change["item"]["fingerprints"]["vpdq"] == frames
    _, state, _ = snapshot(world)
    assert state[item_id]["fingerprints"]["vpdq"] == frames


def test_a_video_matches_by_vpdq_with_both_shares(world: World, clips: Clips) -> None:
    (item_id,) = world.submit_ok("iwf", [video_item(clips)])
    copy = VpdqSignal.hash_video(clips.reencoded).value
    other = VpdqSignal.hash_video(clips.unrelated).value
    (hit,) = match_one(world, {"vpdq": copy})
    assert hit["item"] == item_id and hit["signal"] == "vpdq"
    assert hit["query_share"] >= 0.8 and hit["listed_share"] >= 0.8
    assert hit["distance"] == pytest.approx(1 - hit["query_share"], abs=1e-3)
    assert match_one(world, {"vpdq": other}) == []
    # The frames as JSON objects (the feed's shape) are accepted as a query too.
    assert [h["item"] for h in match_one(world, {"vpdq": VpdqSignal.present(copy)})] == [item_id]
    # A radius of 0 asks for every query frame to match; out-of-range radii are refused.
    bad = world.client("plat").post(
        "/api/v1/match", json={"fingerprints": [{"vpdq": copy}], "radius": {"vpdq": 2}}
    )
    assert bad.status_code == 422 and "between 0 and 1" in bad.json()["error"]


def test_an_uploaded_video_is_hashed_and_matched_raw_or_multipart(world: World, clips: Clips) -> None:
    (item_id,) = world.submit_ok("iwf", [video_item(clips)])
    client = world.client("plat")
    raw = client.post("/api/v1/match/media", content=clips.reencoded)
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert body["hashes"]["vpdq"] and body["hashes"]["md5"] == hashlib.md5(clips.reencoded).hexdigest()
    (hit,) = body["matches"]
    assert hit["item"] == item_id and hit["signal"] == "vpdq" and hit["listed_share"] >= 0.8
    same = client.post("/api/v1/match/media", files={"file": ("clip.mp4", clips.listed, "video/mp4")})
    assert same.status_code == 200, same.text
    assert {m["signal"] for m in same.json()["matches"]} == {"md5"}  # exact beats the video distance
    unrelated = client.post("/api/v1/match/media", files={"file": ("other.mp4", clips.unrelated)})
    assert unrelated.status_code == 200 and unrelated.json()["matches"] == []
    wrong_field = client.post("/api/v1/match/media", files={"upload": ("x.mp4", clips.listed)})
    assert wrong_field.status_code == 422 and "'file'" in wrong_field.json()["error"]


def test_bad_vpdq_values_are_refused_with_422(world: World, clips: Clips) -> None:
    bad_item = world.submit("iwf", [video_item(clips, vpdq="0,100,nothex,0.0")])
    assert bad_item.status_code == 422
    for value in ("", "0,100,abc", '[{"pdq": 5}]', "1,2"):
        r = world.client("plat").post("/api/v1/match", json={"fingerprints": [{"vpdq": value}]})
        assert r.status_code == 422, (value, r.text)
        assert r.json()["rejected"][0]["index"] == 0
