"""Sync against a hub speaking the contract over MockTransport: bootstrap, follow, resume, tombstones."""

from __future__ import annotations

import httpx
import pytest

from hashhub.agent.items import parse_item
from hashhub.agent.matcher import Matcher
from hashhub.agent.store import Change, Store
from hashhub.agent.sync import sync_all, sync_hub

from .conftest import HUB_URL, KEY, FakeHub, make_item, pdq_hex


def _sync(store: Store, hub: FakeHub, url: str = HUB_URL, page: int = 1000):
    state = store.hub(url)
    with hub.client(url) as client:
        return sync_hub(store, state, client, page_size=page)


def _matched_items(store: Store, n: int) -> set[str]:
    matcher = Matcher()
    matcher.refresh(store)
    return {m.meta.item_id for m in matcher.match({"pdq": pdq_hex(n)})}


def test_bootstrap_from_snapshot_then_follow_feed(any_store: Store, fake_hub: FakeHub) -> None:
    for n in range(5):
        fake_hub.upsert(make_item(n))
    any_store.follow(HUB_URL, KEY)
    result = _sync(any_store, fake_hub)
    assert result.ok and result.bootstrapped and result.cursor == 5
    assert [r.url.path for r in fake_hub.requests][:2] == ["/api/v1/snapshot", "/api/v1/feed"]
    assert any_store.count_items() == 5

    fake_hub.upsert(make_item(7))
    fake_hub.delete("item-0")
    second = _sync(any_store, fake_hub)
    assert second.ok and not second.bootstrapped
    assert (second.cursor_before, second.cursor, second.upserts, second.deletes) == (5, 7, 1, 1)
    assert fake_hub.requests[-1].url.params["after"] == "5"
    assert _matched_items(any_store, 7) == {"item-7"}
    assert _matched_items(any_store, 0) == set()  # the tombstone stopped it matching


def test_network_error_midway_resumes_without_loss_or_duplicates(store: Store, fake_hub: FakeHub) -> None:
    store.follow(HUB_URL, KEY)
    assert _sync(store, fake_hub).ok  # bootstrap on an empty hub
    for n in range(25):
        fake_hub.upsert(make_item(n))
    for n in range(0, 25, 5):
        fake_hub.delete(f"item-{n}")
    calls = {"feed": 0}

    def flaky(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/api/v1/feed":
            calls["feed"] += 1
            if calls["feed"] == 3:
                raise httpx.ConnectError("connection reset", request=request)
        return None

    fake_hub.fault = flaky
    failed = _sync(store, fake_hub, page=10)
    assert not failed.ok and "Cannot reach the hub" in failed.error
    assert failed.cursor == 20  # two pages committed, the third lost with the connection
    assert store.hub(HUB_URL).last_error == failed.error

    fake_hub.fault = None
    resumed = _sync(store, fake_hub, page=10)
    assert resumed.ok and resumed.cursor == 30
    assert store.hub(HUB_URL).last_error is None
    assert store.count_items() == 20
    expected = set(fake_hub.current())
    matcher = Matcher()
    matcher.refresh(store)
    assert len(matcher) == len(expected)
    for item_id in expected:
        n = int(item_id.removeprefix("item-"))
        assert [m.meta.item_id for m in matcher.match({"pdq": pdq_hex(n)})] == [item_id]


def test_interrupted_snapshot_is_taken_again(store: Store, fake_hub: FakeHub) -> None:
    for n in range(10):
        fake_hub.upsert(make_item(n))
    store.follow(HUB_URL, KEY)
    fake_hub.fault = lambda r: httpx.Response(500, text="boom") if r.url.path == "/api/v1/feed" else None
    first = _sync(store, fake_hub)
    assert not first.ok and "500" in first.error
    fake_hub.fault = None
    fake_hub.delete("item-3")
    again = _sync(store, fake_hub)
    assert again.ok and again.cursor == 11
    assert store.count_items() == 9


def test_bad_key_is_recorded_not_raised(store: Store, fake_hub: FakeHub) -> None:
    store.follow(HUB_URL, "wrong")
    with fake_hub.client(key="wrong") as client:
        result = sync_hub(store, store.hub(HUB_URL), client)
    assert not result.ok and "refused the key" in result.error and "HASHHUB_KEY" in result.error
    assert store.hub(HUB_URL).cursor == 0


def test_withdrawn_status_in_an_upsert_stops_matching(store: Store, fake_hub: FakeHub) -> None:
    fake_hub.upsert(make_item(1))
    store.follow(HUB_URL, KEY)
    _sync(store, fake_hub)
    assert _matched_items(store, 1) == {"item-1"}
    fake_hub.upsert(make_item(1, status="withdrawn"))
    _sync(store, fake_hub)
    assert _matched_items(store, 1) == set()


def test_several_hubs_keep_their_own_cursors_and_items(store: Store) -> None:
    a, b = FakeHub(key="ka"), FakeHub(key="kb")
    for n in range(3):
        a.upsert(make_item(n))
    b.upsert(make_item(0, contributor="hotline-b"))  # same item id on another hub: a different item
    store.follow("http://a.test", "ka")
    store.follow("http://b.test", "kb")
    hubs = {"http://a.test": a, "http://b.test": b}
    results = sync_all(store, lambda h: hubs[h.url].client(h.url))
    assert [(r.hub, r.cursor) for r in results] == [("http://a.test", 3), ("http://b.test", 1)]
    matcher = Matcher()
    matcher.refresh(store)
    found = matcher.match({"pdq": pdq_hex(0)})
    assert sorted((m.meta.hub, m.meta.contributors) for m in found) == [
        ("http://a.test", ("hotline-a",)),
        ("http://b.test", ("hotline-b",)),
    ]
    b.delete("item-0")
    sync_all(store, lambda h: hubs[h.url].client(h.url))
    assert matcher.refresh(store) == 1
    assert [m.meta.hub for m in matcher.match({"pdq": pdq_hex(0)})] == ["http://a.test"]


def test_a_checkpoint_never_goes_backwards(store: Store) -> None:
    hub = store.follow(HUB_URL, KEY)
    store.apply_batch(hub.id, [], 10, bootstrapped=True)
    replay = [Change("item-1", parse_item(make_item(1)))]
    assert store.apply_batch(hub.id, replay, 8) == 0  # an older page: ignored entirely
    assert store.hub(HUB_URL).cursor == 10 and store.count_items() == 0


def test_unparseable_fingerprints_are_dropped_not_fatal(store: Store, fake_hub: FakeHub) -> None:
    fake_hub.upsert(make_item(1, fingerprints={"pdq": "xyz", "md5": f"{1:032x}"}))
    store.follow(HUB_URL, KEY)
    result = _sync(store, fake_hub)
    assert result.ok and result.dropped_fingerprints == 1
    matcher = Matcher()
    matcher.refresh(store)
    assert [m.signal for m in matcher.match({"md5": f"{1:032x}"})] == ["md5"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"changes": "nope"}, "without a 'changes' list"),
        ({"changes": [{"cursor": 1, "op": "rename", "id": "x"}], "next": 1}, "unknown feed op"),
        ({"changes": [{"cursor": 1, "op": "upsert", "item": {"list": "v"}}], "next": 1}, "no usable 'id'"),
    ],
)
def test_malformed_feed_is_a_recorded_error(store: Store, fake_hub: FakeHub, body, message) -> None:
    store.follow(HUB_URL, KEY)
    _sync(store, fake_hub)
    fake_hub.fault = lambda r: httpx.Response(200, json=body) if r.url.path == "/api/v1/feed" else None
    result = _sync(store, fake_hub)
    assert not result.ok and message in result.error
    assert store.hub(HUB_URL).cursor == 0
