"""Feedback, disputes, confirm, withdraw and hits, as contributors and members see them."""

from __future__ import annotations

from tests.hub.conftest import World, item


def negative(world: World, org: str, item_id: str, reason: str = "not_csam") -> dict:
    r = world.client(org).post(
        f"/api/v1/items/{item_id}/feedback", json={"verdict": "negative", "reason": reason}
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_negative_feedback_from_enough_members_disputes_then_confirm_restores(world: World) -> None:
    (item_id,) = world.submit_ok("iwf", [item(1)])
    assert negative(world, "plat", item_id)["status"] == "active"  # one member is not enough (threshold 2)
    assert negative(world, "plat", item_id)["status"] == "active"  # the same member twice counts once
    assert negative(world, "plat2", item_id)["status"] == "disputed"
    changes = world.feed()["changes"]
    assert [c["item"]["status"] for c in changes] == ["disputed", "disputed"]  # current state, both changes

    mine = world.client("iwf").get(f"/api/v1/items/{item_id}").json()
    assert mine["status"] == "disputed" and mine["feedback"] == {"negative": 2}

    r = world.client("iwf").post(f"/api/v1/items/{item_id}/confirm", json={"reason": "re-reviewed"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert world.feed(after=changes[-1]["cursor"])["changes"][0]["item"]["status"] == "active"
    # Old negative votes do not dispute it again; new ones after the confirmation do.
    assert negative(world, "plat", item_id)["status"] == "active"
    assert negative(world, "plat2", item_id)["status"] == "disputed"


def test_withdrawal_is_the_contributors_alone_and_final(world: World) -> None:
    (item_id,) = world.submit_ok("iwf", [item(1)])
    assert (
        world.client("ncmec").post(f"/api/v1/items/{item_id}/withdraw", json={"reason": "x"}).status_code
        == 403
    )
    assert (
        world.client("plat").post(f"/api/v1/items/{item_id}/withdraw", json={"reason": "x"}).status_code
        == 403
    )
    r = world.client("iwf").post(f"/api/v1/items/{item_id}/withdraw", json={"reason": "false positive"})
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    assert world.client("iwf").post(f"/api/v1/items/{item_id}/withdraw", json={}).status_code == 409
    assert world.feed()["changes"][-1] == {"cursor": r.json()["cursor"], "op": "delete", "id": item_id}
    late = world.client("plat").post(
        f"/api/v1/items/{item_id}/feedback", json={"verdict": "negative", "reason": "x"}
    )
    assert late.status_code == 409
    assert world.client("iwf").post(f"/api/v1/items/{item_id}/confirm", json={}).status_code == 409


def test_hits_are_counted_for_the_contributor(world: World) -> None:
    a, b = world.submit_ok("iwf", [item(1), item(2)])
    for org, target, count in (("plat", a, 3), ("plat2", a, 1), ("plat", b, 1)):
        r = world.client(org).post(f"/api/v1/items/{target}/hits", json={"count": count})
        assert r.status_code == 200, r.text
    assert world.client("iwf").get(f"/api/v1/items/{a}").json()["hits"] == 4
    stats = world.client("iwf").get("/api/v1/stats").json()
    assert stats["contributed"]["hits"] == 5 and stats["contributed"]["items"] == {"active": 2}
    assert world.client("plat").get("/api/v1/stats").json()["readable_items"] == 2
    assert "hits" not in world.client("plat").get(f"/api/v1/items/{a}").json()  # members do not see them


def test_feedback_payloads_and_unknown_items_get_clear_errors(world: World) -> None:
    (item_id,) = world.submit_ok("iwf", [item(1)])
    plat = world.client("plat")
    bad = plat.post(f"/api/v1/items/{item_id}/feedback", json={"verdict": "maybe", "reason": "x"})
    assert bad.status_code == 422 and "verdict" in bad.json()["error"]
    assert (
        plat.post("/api/v1/items/999999/feedback", json={"verdict": "negative", "reason": "x"}).status_code
        == 404
    )
    assert plat.get("/api/v1/items/abc").status_code == 422
    assert plat.get("/api/v1/items/99999999999999999999999").status_code == 422
    assert plat.get("/api/v1/items/424242").status_code == 404
