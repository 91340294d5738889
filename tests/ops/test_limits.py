"""Body-size limits and per-key rate limits, as a client of the hub and the agent sees them."""

from __future__ import annotations

import time
from collections.abc import Iterator

from hashhub.ops import BODY_SLACK
from hashhub.ops.ratelimit import TokenBuckets

from .conftest import AGENT_KEY, bearer

PDQ = "f" * 64


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size


def test_declared_oversize_body_is_refused_before_reading(hub_client) -> None:
    client, keys = hub_client(max_upload_bytes=1024)
    too_big = 1024 + BODY_SLACK + 1
    started = time.perf_counter()
    r = client.post(
        "/api/v1/items",
        content=b"{" + b" " * (too_big - 2) + b"}",
        headers={**bearer(keys["contrib"]), "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert "larger than this server accepts" in r.json()["error"]
    assert time.perf_counter() - started < 5


def test_streamed_body_without_length_is_cut_off_at_the_limit(hub_client) -> None:
    client, keys = hub_client(max_upload_bytes=1024)
    r = client.post(
        "/api/v1/items",
        content=_chunks(4 * BODY_SLACK),  # chunked: no Content-Length to trust
        headers={**bearer(keys["contrib"]), "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert "larger than this server accepts" in r.text


def test_agent_refuses_an_oversize_upload_stream(agent_client) -> None:
    client = agent_client(max_upload_bytes=1024)
    r = client.post(
        "/api/v1/scan",
        content=_chunks(4 * BODY_SLACK),
        headers={**bearer(AGENT_KEY), "content-type": "image/jpeg"},
    )
    assert r.status_code == 413


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected(hub_client) -> None:
    client, keys = hub_client(rate_limits={"member": 1.0, "admin": 0.0}, rate_limit_burst_seconds=3.0)
    statuses = [client.get("/api/v1/me", headers=bearer(keys["member"])).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/v1/me", headers=bearer(keys["member"]))
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Too many requests" in refused.json()["error"]
    # Another member's key has its own bucket, and admin (rate 0) is unlimited.
    assert client.get("/api/v1/me", headers=bearer(keys["member2"])).status_code == 200
    assert all(client.get("/api/v1/me", headers=bearer(keys["admin"])).status_code == 200 for _ in range(20))


def test_a_forged_key_with_a_victims_key_id_cannot_drain_its_bucket(hub_client) -> None:
    client, keys = hub_client(rate_limits={"member": 1.0, "anonymous": 1.0}, rate_limit_burst_seconds=2.0)
    victim_id = keys["member"].split("_")[1]
    forged = bearer(f"hh_{victim_id}_not-the-secret")
    assert [client.get("/api/v1/me", headers=forged).status_code for _ in range(4)] == [401, 401, 429, 429]
    assert client.get("/api/v1/me", headers=bearer(keys["member"])).status_code == 200


def test_buckets_refill_at_the_role_rate() -> None:
    buckets = TokenBuckets({"member": 10.0, "admin": 0.0}, burst_seconds=1.0)
    rate = buckets.rate_for(frozenset({"member"}))
    assert all(buckets.take("k", rate, now=100.0) == 0 for _ in range(10))
    wait = buckets.take("k", rate, now=100.0)
    assert 0.09 < wait <= 0.1
    assert buckets.take("k", rate, now=100.2) == 0  # refilled two tokens in 0.2 s
    assert buckets.rate_for(frozenset({"member", "admin"})) == 0.0  # most generous role wins
