"""The agent's HTTP API: scan uploads and fingerprints, review queue, reports, hits and feedback."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image, ImageEnhance

from hashhub.agent.app import create_app

from .conftest import FakeHub, TestClient, corpus_rows, item_from_row, make_item

AUTH = {"Authorization": "Bearer test-agent-key"}


@pytest.fixture
def listed(corpus, fake_hub: FakeHub):
    """Four corpus photos a test pretends are listed: verified, unverified, disputed, verified(B2)."""
    rows = corpus_rows(corpus, 4)
    fake_hub.upsert(item_from_row(rows[0], 0))
    fake_hub.upsert(item_from_row(rows[1], 1, verification={"reviewers": 0}))
    fake_hub.upsert(item_from_row(rows[2], 2, status="disputed"))
    fake_hub.upsert(item_from_row(rows[3], 3, classification={"scheme": "industry", "value": "B2"}))
    return [corpus / "photos" / r["file"] for r in rows]


@pytest.fixture
def client(runtime, listed):
    runtime.sync_once()
    with TestClient(create_app(runtime, background_sync=False)) as c:
        yield c


def _scan(client: TestClient, data: bytes, name: str = "upload.jpg"):
    return client.post("/api/v1/scan", headers=AUTH, files={"file": (name, data, "image/jpeg")})


def test_scan_upload_matches_a_listed_photo(client: TestClient, listed) -> None:
    response = _scan(client, listed[0].read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["matched"] and body["action"] == "block_and_report" and body["file"] == "upload.jpg"
    [match] = body["matches"]
    assert match["item"] == "item-0" and match["match_type"] == "exact" and match["distance"] == 0
    assert match["classification"] == {"scheme": "industry", "value": "A1"}
    assert match["contributors"] == ["hotline-a"] and match["verifications"] == 2
    assert set(body["hashes"]) == {"md5", "sha1", "sha256", "pdq"}
    assert body["report"] >= 1


def test_scan_reencoded_copy_matches_perceptually(client: TestClient, listed) -> None:
    image = ImageEnhance.Brightness(Image.open(listed[0]).convert("RGB")).enhance(1.1)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=50)
    body = _scan(client, buffer.getvalue()).json()
    assert body["matched"]
    assert body["matches"][0]["match_type"] == "perceptual" and body["matches"][0]["distance"] <= 31


def test_scan_unlisted_photo_is_allowed_and_not_recorded(client: TestClient, corpus, runtime) -> None:
    other = corpus / "photos" / corpus_rows(corpus, 1, offset=500)[0]["file"]
    body = _scan(client, other.read_bytes()).json()
    assert (body["matched"], body["action"], body["matches"]) == (False, "allow", [])
    assert "decision" not in body


def test_scan_costs_well_under_50ms(client: TestClient, listed) -> None:
    # CPU time, not wall time: this machine's cores are shared, and a busy neighbour must not fail
    # the test. benchmarks/agent_scan.py reports wall-clock latency under concurrent load.
    data = listed[0].read_bytes()
    _scan(client, data)  # the first request pays for lazy imports
    timings = []
    for _ in range(20):
        started = time.process_time()
        assert _scan(client, data).status_code == 200
        timings.append(time.process_time() - started)
    print(f"\nscan CPU time per request, median: {sorted(timings)[10] * 1000:.1f} ms")
    assert sorted(timings)[len(timings) // 2] < 0.025


def test_scan_raw_body_and_fingerprints(client: TestClient, listed, corpus) -> None:
    raw = client.post(
        "/api/v1/scan?file=x.jpg",
        headers={**AUTH, "content-type": "application/octet-stream"},
        content=listed[0].read_bytes(),
    )
    assert raw.json()["matched"] and raw.json()["file"] == "x.jpg"
    row = corpus_rows(corpus, 1)[0]
    fps = client.post("/api/v1/scan", headers=AUTH, json={"fingerprints": {"PDQ": row["pdq"].upper()}})
    assert fps.status_code == 200 and fps.json()["matches"][0]["item"] == "item-0"


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"json": {"fingerprints": {"pdq": "abc"}}}, 422, "pdq: expected 64 hexadecimal"),
        ({"json": {"fingerprints": {}}}, 422, "no fingerprints"),
        ({"json": {"hashes": []}}, 422, '{"fingerprints"'),
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "could not be parsed",
        ),
        ({"files": {"other": ("a.jpg", b"xx")}}, 422, "no field named 'file'"),
        ({"files": {"file": ("a.jpg", b"")}}, 422, "empty"),
        ({"content": b"x" * 2048, "headers": {"content-type": "image/jpeg"}}, 413, "at most 1024"),
    ],
)
def test_bad_scan_requests_get_clear_4xx(client: TestClient, runtime, kwargs, status, message) -> None:
    runtime.settings.max_upload_bytes = 1024
    headers = {**AUTH, **kwargs.pop("headers", {})}
    response = client.post("/api/v1/scan", headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_undecodable_upload_still_checks_exact_hashes(client: TestClient) -> None:
    body = _scan(client, b"this is not an image at all").json()
    assert body["action"] == "allow" and body["error"] and "md5" in body["hashes"]


def test_scan_needs_the_agent_key(client: TestClient) -> None:
    assert client.post("/api/v1/scan", files={"file": ("a", b"x")}).status_code == 401
    wrong = client.post("/api/v1/scan", headers={"Authorization": "Bearer nope"}, files={"file": ("a", b"x")})
    assert wrong.status_code == 401 and "does not know this key" in wrong.json()["detail"]
    assert client.get("/healthz").json()["items"] == 4


def test_review_reject_sends_negative_feedback_and_hits(client: TestClient, listed, fake_hub) -> None:
    body = _scan(client, listed[1].read_bytes()).json()  # unverified item -> review
    assert body["action"] == "review"
    queue = client.get("/api/v1/reviews", headers=AUTH).json()["reviews"]
    assert [r["id"] for r in queue] == [body["review"]] and queue[0]["matches"][0]["item"] == "item-1"
    rejected = client.post(
        f"/api/v1/reviews/{body['review']}/reject",
        headers=AUTH,
        json={"reason": "wrong_match", "note": "a different photo"},
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    again = client.post(f"/api/v1/reviews/{body['review']}/reject", headers=AUTH, json={"reason": "x"})
    assert again.status_code == 409 and "already rejected" in again.json()["detail"]
    assert client.post("/api/v1/reviews/999/confirm", headers=AUTH, json={}).status_code == 404
    assert client.post("/api/v1/reviews/1/reject", headers=AUTH, json={"reason": ""}).status_code == 422

    assert fake_hub.feedback == []  # nothing leaves before the next sync
    sync = client.post("/api/v1/sync", headers=AUTH).json()
    assert sync["results"][0]["ok"] and sync["results"][0]["sent"] == 2
    assert fake_hub.feedback == [
        ("item-1", {"verdict": "negative", "reason": "wrong_match", "note": "a different photo"})
    ]
    assert fake_hub.hits == [("item-1", 1)]


def test_review_confirm_drafts_a_report(client: TestClient, listed) -> None:
    body = _scan(client, listed[2].read_bytes(), "disputed.jpg").json()  # disputed -> review
    assert body["action"] == "review"
    confirmed = client.post(
        f"/api/v1/reviews/{body['review']}/confirm", headers=AUTH, json={"reviewer": "ana", "viewed": True}
    ).json()
    assert confirmed["status"] == "confirmed" and confirmed["report"]
    report = client.get(f"/api/v1/reports/{confirmed['report']}", headers=AUTH).json()
    assert report["status"] == "draft" and report["sent"] is False
    assert report["file"]["viewed_by_person"] is True and report["file"]["name"] == "disputed.jpg"
    assert report["file"]["hashes"]["md5"] == body["hashes"]["md5"]
    assert report["file"]["industry_classification"] == {"scheme": "industry", "value": "A1"}
    assert report["matched"][0]["contributors"] == ["hotline-a"] and report["review"]["reviewer"] == "ana"
    assert report["incident"]["time"]
    exported = client.post("/api/v1/reports/export", headers=AUTH).json()["reports"]
    assert [r["id"] for r in exported] == [confirmed["report"]] and exported[0]["exported_at"]
    assert client.post("/api/v1/reports/export?unexported=true", headers=AUTH).json()["reports"] == []
    assert client.get("/api/v1/reports/999", headers=AUTH).status_code == 404


def test_sync_updates_the_in_memory_index_in_place(client: TestClient, listed, fake_hub) -> None:
    assert _scan(client, listed[0].read_bytes()).json()["matched"]
    fake_hub.delete("item-0")
    client.post("/api/v1/sync", headers=AUTH)
    assert not _scan(client, listed[0].read_bytes()).json()["matched"]
    status = client.get("/api/v1/status", headers=AUTH).json()
    assert status["items"] == 3 and status["hubs"][0]["cursor"] == 5 and "api_key" not in status["hubs"][0]


def test_videos_match_by_vpdq(runtime, fake_hub, corpus) -> None:
    from hashhub.hashing import hash_bytes
    from tests.support import video_clips as clips

    photos = [corpus / "photos" / r["file"] for r in corpus_rows(corpus, 6, offset=100)]
    listed = clips.encode(clips.slideshow_frames(photos[:3], seconds_each=1.0))
    vpdq = hash_bytes(listed, ["vpdq"]).hashes["vpdq"]
    fake_hub.upsert(make_item(50, content_type="video", fingerprints={"vpdq": vpdq}))
    runtime.sync_once()
    with TestClient(create_app(runtime, background_sync=False)) as client:
        copy = clips.transcode(listed, scale=0.75, bitrate=200_000)
        body = _scan(client, copy, "copy.mp4").json()
        assert body["matched"] and "vpdq" in body["hashes"] and "pdq" not in body["hashes"]
        [match] = body["matches"]
        assert match["item"] == "item-50" and match["signal"] == "vpdq" and match["query_share"] >= 0.8
        other = clips.encode(clips.slideshow_frames(photos[3:], seconds_each=1.0))
        assert not _scan(client, other, "other.mp4").json()["matched"]
