"""Hits and feedback survive a hub outage; replicas sharing a store see each other's syncs; the
background sync of `agent serve` updates the in-memory index in place; the README documents the
default policy exactly."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from hashhub.agent import outbox
from hashhub.agent.matcher import Matcher
from hashhub.agent.policy import Policy
from hashhub.agent.store import Store
from hashhub.agent.sync import sync_all

from .conftest import HUB_URL, KEY, FakeHub, corpus_rows, item_from_row, make_item, pdq_hex

README = Path(__file__).resolve().parents[2] / "README.md"


def test_hub_outage_keeps_hits_queued_and_refusals_stop_retrying(runtime, fake_hub: FakeHub, corpus) -> None:
    row = corpus_rows(corpus, 1)[0]
    fake_hub.upsert(item_from_row(row, 0))
    runtime.sync_once()
    runtime.scanner.scan_bytes((corpus / "photos" / row["file"]).read_bytes(), "a.jpg")
    runtime.scanner.scan_bytes((corpus / "photos" / row["file"]).read_bytes(), "b.jpg")

    fake_hub.fault = lambda r: (
        httpx.Response(503, text="maintenance") if r.url.path.endswith("/hits") else None
    )
    down = runtime.sync_once()[0]
    assert down.ok and down.sent == 0 and "503" in down.warnings[0]  # the feed still synced
    queued = outbox.pending(runtime.store)
    assert len(queued) == 2 and queued[0]["attempts"] == 1 and "503" in queued[0]["last_error"]

    fake_hub.fault = None
    assert runtime.sync_once()[0].sent == 2
    assert fake_hub.hits == [("item-0", 2)]  # one call per item, with a count
    assert outbox.pending(runtime.store) == []

    runtime.scanner.scan_bytes((corpus / "photos" / row["file"]).read_bytes(), "c.jpg")
    fake_hub.fault = lambda r: httpx.Response(409, text="withdrawn") if r.url.path.endswith("/hits") else None
    refused = runtime.sync_once()[0]
    assert refused.ok and outbox.pending(runtime.store) == []  # refused for good: not retried forever


def test_replicas_sharing_a_store_follow_each_others_syncs(any_store: Store, fake_hub: FakeHub) -> None:
    other_replica = Store(any_store.engine)
    reader = Matcher()
    reader.refresh(other_replica)
    fake_hub.upsert(make_item(1))
    any_store.follow(HUB_URL, KEY)
    sync_all(any_store, lambda h: fake_hub.client(h.url))
    assert reader.refresh(other_replica) == 1
    assert [m.meta.item_id for m in reader.match({"pdq": pdq_hex(1)})] == ["item-1"]
    fake_hub.delete("item-1")
    sync_all(any_store, lambda h: fake_hub.client(h.url))
    assert reader.refresh(other_replica) == 1 and reader.match({"pdq": pdq_hex(1)}) == []
    assert reader.refresh(other_replica) == 0  # nothing new: nothing re-read


def test_background_sync_updates_the_index_in_place(runtime, fake_hub: FakeHub) -> None:
    runtime.settings.sync_interval = 0.2
    runtime.load()
    runtime.start_background_sync()
    try:
        fake_hub.upsert(make_item(5))
        deadline = time.monotonic() + 20
        while not runtime.scanner.matcher.match({"pdq": pdq_hex(5)}) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runtime.scanner.matcher.match({"pdq": pdq_hex(5)})
    finally:
        runtime.stop()


def test_readme_documents_the_default_policy() -> None:
    section = README.read_text().split("<!-- section: agent -->")[1].split("<!-- /section: agent -->")[0]
    block = re.search(r"The built-in default:\n\n```toml\n(.*?)```", section, re.S)
    assert block, "the agent section shows the default policy"
    assert Policy.from_toml(block.group(1)).rules == Policy.default().rules
