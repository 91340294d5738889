"""Batch submit: idempotent re-submits, atomic batches, partial mode, clear rejections."""

from __future__ import annotations

from tests.hub.conftest import World, item, md5_of, pdq_of


def test_submit_returns_ids_and_the_item_reaches_the_feed(world: World) -> None:
    ids = world.submit_ok("iwf", [item(1), item(2)])
    feed = world.feed()
    assert [c["item"]["id"] for c in feed["changes"]] == ids
    first = feed["changes"][0]["item"]
    assert first["contributor"] == "iwf"
    assert first["list"] == "verified"
    assert first["classification"] == {"scheme": "industry", "value": "A1"}
    assert first["fingerprints"] == {"md5": md5_of(1), "pdq": pdq_of(1)}
    assert first["status"] == "active"


def test_resubmitting_the_same_batch_changes_nothing(world: World) -> None:
    rows = [item(1), item(2)]
    ids = world.submit_ok("iwf", rows)
    again = world.submit("iwf", rows).json()
    assert [i["id"] for i in again["items"]] == ids
    assert again["created"] == 0 and again["updated"] == 0 and again["unchanged"] == 2
    assert len(world.feed()["changes"]) == 2


def test_a_changed_resubmit_updates_the_item_with_a_new_feed_change(world: World) -> None:
    (item_id,) = world.submit_ok("iwf", [item(1, grade="A1")])
    result = world.submit("iwf", [item(1, grade="B2")]).json()
    assert result["items"][0]["id"] == item_id and result["updated"] == 1
    changes = world.feed()["changes"]
    assert [c["item"]["id"] for c in changes] == [item_id, item_id]
    assert changes[-1]["item"]["classification"]["value"] == "B2"


def test_identical_fingerprints_without_external_id_are_the_same_item(world: World) -> None:
    first = world.submit_ok("iwf", [item(7, external=False)])
    second = world.submit_ok("iwf", [item(7, external=False), item(7, external=False)])
    assert second == first * 2
    assert len(world.feed()["changes"]) == 1


def test_one_invalid_row_rejects_the_whole_batch_and_writes_nothing(world: World) -> None:
    bad_md5 = item(2, md5="xyz")
    bad_grade = item(3, grade="Z9")
    r = world.submit("iwf", [item(1), bad_md5, bad_grade, {"fingerprints": {}}])
    assert r.status_code == 422
    body = r.json()
    assert [x["index"] for x in body["rejected"]] == [1, 2, 3]
    assert "md5" in body["rejected"][0]["error"]
    assert "Z9" in body["rejected"][1]["error"]
    assert "nothing" in body["error"] or "none" in body["error"]
    assert world.feed()["changes"] == []
    snap = world.client("plat").get("/api/v1/snapshot").text.splitlines()
    assert len(snap) == 1


def test_partial_writes_the_valid_rows_and_lists_exactly_the_rejected(world: World) -> None:
    r = world.submit("iwf", [item(1), item(2, pdq="00"), item(3)], partial="true")
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 2
    assert [x["index"] for x in body["rejected"]] == [1]
    assert [x["index"] for x in body["items"]] == [0, 2]
    assert len(world.feed()["changes"]) == 2


def test_batch_limits_and_malformed_bodies_get_clear_422s(world: World) -> None:
    too_many = world.submit("iwf", [item(0)] * 10_001)
    assert too_many.status_code == 422 and "10000" in too_many.json()["error"]
    for body in (b"{not json", b'{"items": 5, "list": "verified"}', b'{"list": "verified"}'):
        r = world.client("iwf").post(
            "/api/v1/items", content=body, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]
    not_an_object = world.submit("iwf", ["hello", 3])
    assert not_an_object.status_code == 422
    assert [x["index"] for x in not_an_object.json()["rejected"]] == [0, 1]


def test_any_registered_or_opaque_signal_type_is_accepted(world: World) -> None:
    row = item(1, sha256="A" * 64, tmk_pdqf="vendor:0123", pdna=bytes(range(144)).hex())
    (item_id,) = world.submit_ok("iwf", [row])
    got = world.client("plat").get(f"/api/v1/items/{item_id}").json()
    assert got["fingerprints"]["sha256"] == "a" * 64  # canonical form
    assert got["fingerprints"]["tmk_pdqf"] == "vendor:0123"


def test_writing_to_a_list_without_a_grant_is_forbidden(world: World) -> None:
    r = world.submit("iwf", [item(1)], list_name="restricted")
    assert r.status_code == 403 and "restricted" in r.json()["error"]
    r = world.submit("iwf", [item(1)], list_name="nope")
    assert r.status_code in (403, 404) and r.json()["error"]


def test_admins_can_add_a_grading_scheme_and_items_use_it(world: World) -> None:
    admin = world.client("admin")
    r = admin.post("/api/v1/schemes", json={"name": "hotline-x", "values": ["red", "amber"]})
    assert r.status_code == 201, r.text
    assert "hotline-x" in world.client("iwf").get("/api/v1/schemes").json()["schemes"]
    row = item(1)
    row["classification"] = {"scheme": "hotline-x", "value": "RED"}
    (item_id,) = world.submit_ok("iwf", [row])
    assert world.client("plat").get(f"/api/v1/items/{item_id}").json()["classification"]["value"] == "red"
    assert world.client("iwf").post("/api/v1/schemes", json={"name": "x", "values": ["a"]}).status_code == 403
