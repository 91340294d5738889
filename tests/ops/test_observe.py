"""Prometheus metrics and JSON request logs: what an operator scrapes and reads, and what never leaks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from hashhub.ops.apps import sync_lag_seconds
from hashhub.ops.logging import ACCESS_LOGGER, JsonFormatter, redact

from .conftest import AGENT_KEY, bearer

PDQ = "e" * 64


def _submit(client, key: str) -> None:
    row = {"fingerprints": {"pdq": PDQ}, "classification": {"scheme": "industry", "value": "A1"}}
    r = client.post("/api/v1/items", json={"list": "verified", "items": [row]}, headers=bearer(key))
    assert r.status_code == 200, r.text


def test_metrics_need_an_admin_key_or_the_metrics_token(hub_client) -> None:
    client, keys = hub_client(metrics_token="scrape-me")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer(keys["member"])).status_code == 403
    assert client.get("/metrics", headers=bearer("wrong")).status_code == 403
    assert client.get("/metrics", headers=bearer(keys["admin"])).status_code == 200
    assert client.get("/metrics", headers=bearer("scrape-me")).status_code == 200


def test_hub_metrics_count_requests_by_route_template_and_report_index_size(hub_client) -> None:
    client, keys = hub_client()
    _submit(client, keys["contrib"])
    assert client.get("/api/v1/items/424242", headers=bearer(keys["member"])).status_code == 404
    client.get(f"/no/such/{PDQ}")
    text = client.get("/metrics", headers=bearer(keys["admin"])).text
    assert 'hashhub_http_requests_total{method="POST",route="/api/v1/items",status="200"} 1.0' in text
    assert 'route="/api/v1/items/{item_id}",status="404"' in text
    assert 'route="<unmatched>"' in text
    assert "hashhub_http_request_duration_seconds_bucket" in text
    assert "hashhub_index_items 1.0" in text
    assert PDQ not in text and "424242" not in text


def test_agent_metrics_report_index_size_and_sync_lag(agent_client) -> None:
    client = agent_client()
    assert client.get("/healthz").status_code == 200
    text = client.get("/metrics", headers=bearer(AGENT_KEY)).text
    assert "hashhub_index_items 0.0" in text
    assert "hashhub_sync_lag_seconds 0.0" in text  # follows no hub yet: nothing to lag behind
    assert 'route="/healthz",status="200"' in text


def test_sync_lag_is_the_stalest_hub_and_minus_one_when_never_synced() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    old, new = datetime(2026, 1, 1, 11, 0, tzinfo=UTC), datetime(2026, 1, 1, 11, 59, tzinfo=UTC)
    assert sync_lag_seconds([new, old], now) == 3600.0
    assert sync_lag_seconds([new, None], now) == -1.0
    assert sync_lag_seconds([old.replace(tzinfo=None)], now) == 3600.0  # naive = UTC (SQLite)


def test_request_log_is_json_without_keys_hashes_or_query_strings(hub_client, caplog) -> None:
    client, keys = hub_client()
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    _submit(client, keys["contrib"])
    client.get(f"/api/v1/items/7?pdq={PDQ}", headers=bearer(keys["member"]))
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 2
    entries = [json.loads(line) for line in lines]
    assert entries[0]["route"] == "/api/v1/items" and entries[0]["status"] == 200
    assert entries[1]["route"] == "/api/v1/items/{item_id}"
    assert entries[0]["key_id"] == keys["contrib"].split("_")[1]
    for line in lines:
        assert PDQ not in line and "?" not in line
        assert not any(key in line for key in keys.values())


def test_request_log_written_straight_to_the_stream_reads_like_a_formatted_record() -> None:
    """With the server's own logging set-up (one JSON handler on stderr) the request line skips the
    logging machinery; it must read exactly as the formatter would write the same record."""
    script = (
        "import logging, time\n"
        "from hashhub.ops import logging as oplog\n"
        "oplog.configure()\n"
        "assert oplog._sole_json_handler(logging.getLogger(oplog.ACCESS_LOGGER)) is not None\n"
        "oplog.log_request('POST', '/api/v1/match', 200, 0.00123, '0123456789ab')\n"
        "oplog.log_request('BREW', '/x', 418, 1.5, 'hh_0123456789ab_secret')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    stamp = datetime.strptime(first.pop("ts"), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(stamp.timestamp() - time.time()) < 60
    assert first == {
        "level": "info",
        "logger": ACCESS_LOGGER,
        "msg": "request",
        "method": "POST",
        "route": "/api/v1/match",
        "status": 200,
        "duration_ms": 1.23,
        "key_id": "0123456789ab",
    }
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, "request", (), None)
    record.fields = {k: v for k, v in first.items() if k not in ("level", "logger", "msg")}
    record.fields_are_safe = True
    assert {k: v for k, v in json.loads(JsonFormatter().format(record)).items() if k != "ts"} == first
    assert second["key_id"] == "<other>" and "secret" not in lines[1]


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("key hh_0123456789ab_s3cr3t-Secret_xyz failed", "s3cr3t"),
        ("Authorization: Bearer abc.def", "abc.def"),
        (f"pdq {PDQ} matched", PDQ),
        ("md5 d41d8cd98f00b204e9800998ecf8427e", "d41d8cd98f00b204e9800998ecf8427e"),
    ],
)
def test_formatter_masks_secrets_and_hashes_in_any_message(text: str, leak: str) -> None:
    assert leak not in redact(text)
    record = logging.LogRecord("hashhub.x", logging.WARNING, __file__, 1, "%s", (text,), None)
    assert leak not in JsonFormatter().format(record)
