"""Feed and snapshot: ordered changes with tombstones, filters, paging, snapshot + feed = the list."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import orjson
from tests.hub.conftest import World, item


def follow(world: World, org: str, after: int, limit: int = 1000, **params: Any) -> tuple[list[dict], int]:
    """Every change after `after`, page by page, as a member's sync loop would read them."""
    seen: list[dict] = []
    while True:
        page = world.feed(org, after, limit=limit, **params)
        seen.extend(page["changes"])
        assert page["next"] >= after
        after = page["next"]
        if not page["has_more"]:
            return seen, after


def apply(state: dict[str, dict], changes: list[dict]) -> None:
    for c in changes:
        if c["op"] == "delete":
            state.pop(c["id"], None)
        else:
            state[c["item"]["id"]] = c["item"]


def snapshot(world: World, org: str = "plat", **headers: str) -> tuple[int, dict[str, dict], httpx.Response]:
    r = world.client(org).get("/api/v1/snapshot", headers=headers)
    assert r.status_code == 200, r.text
    lines = r.content.splitlines()
    cursor = orjson.loads(lines[0])["cursor"]
    return cursor, {d["id"]: d for d in map(orjson.loads, lines[1:])}, r


def test_cursors_strictly_increase_and_paging_loses_nothing(world: World) -> None:
    for batch in range(5):
        world.submit_ok("iwf", [item(batch * 10 + i) for i in range(7)])
    seen, last = follow(world, "plat", 0, limit=3)
    cursors = [c["cursor"] for c in seen]
    assert cursors == sorted(set(cursors)) and len(cursors) == 35
    assert last == cursors[-1]
    assert world.feed("plat", last)["changes"] == []


def test_withdrawal_is_a_tombstone_and_disputes_are_visible(world: World) -> None:
    a, b = world.submit_ok("iwf", [item(1), item(2)])
    assert (
        world.client("iwf").post(f"/api/v1/items/{a}/withdraw", json={"reason": "duplicate"}).status_code
        == 200
    )
    for member in ("plat", "plat2"):
        r = world.client(member).post(
            f"/api/v1/items/{b}/feedback", json={"verdict": "negative", "reason": "not_csam"}
        )
        assert r.status_code == 200
    changes = world.feed()["changes"][2:]
    assert changes[0] == {"cursor": changes[0]["cursor"], "op": "delete", "id": a}
    assert changes[1]["op"] == "upsert" and changes[1]["item"]["status"] == "disputed"


def test_snapshot_then_feed_equals_the_current_list(world: World) -> None:
    ids = world.submit_ok("iwf", [item(i) for i in range(20)])
    world.submit_ok("ncmec", [item(100 + i) for i in range(5)])
    cursor, state, _ = snapshot(world)
    assert len(state) == 25
    # Changes after the snapshot: withdrawals, updates, new items, a dispute.
    world.client("iwf").post(f"/api/v1/items/{ids[0]}/withdraw", json={"reason": "x"})
    world.submit_ok("iwf", [item(1, grade="B1"), item(500)])
    world.submit_ok("ncmec", [item(600)], list_name="restricted")  # not readable by plat
    changes, _ = follow(world, "plat", cursor)
    apply(state, changes)
    _, fresh, _ = snapshot(world)
    assert state == fresh
    assert ids[0] not in fresh and fresh[ids[1]]["classification"]["value"] == "B1"
    assert all(d["list"] == "verified" for d in fresh.values())


def test_snapshot_is_gzip_when_the_client_accepts_it(world: World) -> None:
    world.submit_ok("iwf", [item(i) for i in range(3)])
    raw = httpx.get(
        f"{world.url}/api/v1/snapshot",
        headers={"Authorization": f"Bearer {world.keys['plat']}", "Accept-Encoding": "gzip"},
    )
    assert raw.headers["content-encoding"] == "gzip"
    lines = (
        gzip.decompress(raw.read()).splitlines()
        if raw.content[:2] == b"\x1f\x8b"
        else raw.content.splitlines()
    )
    assert orjson.loads(lines[0]) == {"cursor": 3} and len(lines) == 4
    plain = world.client("plat").get("/api/v1/snapshot", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content.splitlines()[0] == b'{"cursor": 3}'


def test_feed_filters_by_list_signal_grading_and_contributor(world: World) -> None:
    world.submit_ok("iwf", [item(1, grade="A1"), item(2, grade="B2"), item(3, grade="B1", sha1="a" * 40)])
    world.submit_ok("ncmec", [item(4, grade="A1")])
    world.submit_ok("both", [item(5, grade="A2")])

    def ext_ids(**params: Any) -> list[str]:
        return [c["item"]["external_id"] for c in world.feed("both", **params)["changes"]]

    assert ext_ids(contributor="ncmec") == ["ext-4"]
    assert ext_ids(grading="industry:A1") == ["ext-1", "ext-4"]
    assert ext_ids(grading=["B2", "A2"]) == ["ext-2", "ext-5"]
    assert ext_ids(signal="sha1") == ["ext-3"]
    assert ext_ids(list="verified", contributor=["iwf", "both"]) == ["ext-1", "ext-2", "ext-3", "ext-5"]
    assert world.client("plat").get("/api/v1/feed", params={"list": "restricted"}).status_code == 403
    assert world.client("plat").get("/api/v1/feed", params={"limit": 0}).status_code == 422
    assert world.client("plat").get("/api/v1/feed", params={"after": -1}).status_code == 422
    assert world.client("plat").get("/api/v1/feed", params={"after": "abc"}).status_code == 422


def test_the_signal_filter_matches_whole_signal_names_only(world: World) -> None:
    # Fingerprints are one JSON column of the item: a name inside another name or inside a value
    # (vPDQ frames carry PDQs; `_` is a wildcard to SQL LIKE) must not pass the filter.
    frames = [{"frame": 0, "quality": 100, "pdq": "ab" * 32, "timestamp": 0.0}]
    world.submit_ok(
        "iwf",
        [
            {**item(1), "fingerprints": {"vpdq": frames}},
            {**item(2), "fingerprints": {"tmkxpdqf": "vendor:1"}},
            {**item(3), "fingerprints": {"tmk_pdqf": "vendor:2", "xpdq": "x"}},
            item(4),
        ],
    )

    def ext_ids(**params: Any) -> list[str]:
        return [c["item"]["external_id"] for c in world.feed("plat", **params)["changes"]]

    assert ext_ids(signal="pdq") == ["ext-4"]
    assert ext_ids(signal="tmk_pdqf") == ["ext-3"]
    assert ext_ids(signal="vpdq") == ["ext-1"]
    assert ext_ids(signal=["tmkxpdqf", "md5"]) == ["ext-2", "ext-4"]
