"""Match: exact and PDQ-radius matching, clusters across contributors, access and withdrawal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa
from tests.hub.conftest import World, flip_bits, item, md5_of, pdq_of

from hashhub.hub import feedback, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.settings import HubSettings


def match(world: World, queries: list[dict[str, Any]], org: str = "plat", **extra: Any) -> list[list[dict]]:
    r = world.client(org).post("/api/v1/match", json={"fingerprints": queries, **extra})
    assert r.status_code == 200, r.text
    return [res["matches"] for res in r.json()["results"]]


def test_exact_and_pdq_within_31_match_but_32_does_not(world: World) -> None:
    (item_id,) = world.submit_ok("iwf", [item(1, grade="B1", reviewers=2)])
    near, far = flip_bits(pdq_of(1), 31), flip_bits(pdq_of(1), 32)
    got = match(world, [{"md5": md5_of(1).upper()}, {"pdq": near}, {"pdq": far}, {"md5": md5_of(2)}])
    assert [len(m) for m in got] == [1, 1, 0, 0]
    exact, fuzzy = got[0][0], got[1][0]
    assert exact["item"] == item_id and exact["signal"] == "md5" and exact["distance"] == 0
    assert fuzzy["signal"] == "pdq" and fuzzy["distance"] == 31
    assert fuzzy["classification"] == {"scheme": "industry", "value": "B1"}
    assert fuzzy["contributors"] == ["iwf"] and fuzzy["verifications"] == 1 and fuzzy["status"] == "active"
    assert match(world, [{"pdq": near}], radius={"pdq": 10}) == [[]]


def test_a_cluster_reports_every_contributor_and_independent_verifications(world: World) -> None:
    base = pdq_of(1)
    world.submit_ok("iwf", [item("a", md5=md5_of(1), pdq=base)])
    world.submit_ok("ncmec", [item("b", md5=md5_of(1))])  # same MD5: same cluster
    world.submit_ok("both", [item("c", pdq=flip_bits(base, 10), reviewers=0)])  # PDQ within 10
    world.submit_ok("both", [item("d", pdq=flip_bits(base, 25))])  # near for matching, not for clustering
    (hits,) = match(world, [{"pdq": base}])
    by_ext = {h["distance"]: h for h in hits}
    assert sorted(by_ext) == [0, 10, 25]
    assert by_ext[0]["contributors"] == ["both", "iwf", "ncmec"]
    assert by_ext[0]["verifications"] == 2  # "both" has no reviewers on its item in this cluster
    assert by_ext[10]["cluster"] == by_ext[0]["cluster"]
    assert by_ext[25]["contributors"] == ["both"] and by_ext[25]["cluster"] != by_ext[0]["cluster"]


def test_withdrawn_items_and_unreadable_lists_never_match(world: World) -> None:
    (a,) = world.submit_ok("iwf", [item(1)])
    world.submit_ok("ncmec", [item(2)], list_name="restricted")
    assert len(match(world, [{"md5": md5_of(1)}])[0]) == 1
    assert match(world, [{"md5": md5_of(2)}]) == [[]]
    assert len(match(world, [{"md5": md5_of(2)}], org="outsider")[0]) == 1
    world.client("iwf").post(f"/api/v1/items/{a}/withdraw", json={"reason": "mistake"})
    assert match(world, [{"md5": md5_of(1)}]) == [[]]


def test_bad_queries_are_rejected_with_their_index(world: World) -> None:
    r = world.client("plat").post(
        "/api/v1/match", json={"fingerprints": [{"md5": md5_of(1)}, {"pdq": "xyz"}, 5]}
    )
    assert r.status_code == 422
    assert [x["index"] for x in r.json()["rejected"]] == [1, 2]
    assert world.client("plat").post("/api/v1/match", json={"fingerprints": []}).status_code == 422
    assert world.client("plat").post("/api/v1/match", json={}).status_code == 422
    too_many = world.client("plat").post(
        "/api/v1/match", json={"fingerprints": [{"md5": md5_of(1)}] * 10_001}
    )
    assert too_many.status_code == 422


def test_a_second_hub_process_sees_items_written_by_the_first(world: World) -> None:
    """Match answers from memory that follows the change log: another process's writes show up
    within a second (at once on SQLite, whose change counter is read per request; after the next
    read of the change-log head elsewhere), and the process that wrote sees them at once."""
    from tests.hub.conftest import open_hub, serving

    other = open_hub(str(world.hub.engine.url.render_as_string(hide_password=False)))
    try:
        with serving(other) as url:
            second = World(other, url, world.keys)
            assert match(second, [{"md5": md5_of(9)}]) == [[]]  # load the pool before the write
            world.submit_ok("iwf", [item(9)])
            acked = time.monotonic()
            assert len(match(world, [{"md5": md5_of(9)}])[0]) == 1
            while not match(second, [{"md5": md5_of(9)}])[0]:
                assert time.monotonic() - acked < 1.0, "the second process missed the write for 1 s"
            second.close()
    finally:
        other.close()


def test_an_uploaded_photo_is_hashed_in_memory_and_matched(world: World, corpus) -> None:
    import csv

    with (corpus / "photos.reference.csv").open() as f:
        ref = next(csv.DictReader(f))
    (item_id,) = world.submit_ok("iwf", [item("photo", pdq=ref["pdq"])])  # pretend this photo is listed
    data = (corpus / "photos" / ref["file"]).read_bytes()
    r = world.client("plat").post("/api/v1/match/media", content=data, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hashes"]["md5"] == ref["md5"]
    assert [m["item"] for m in body["matches"]] == [item_id]
    assert body["matches"][0]["signal"] == "pdq"
    assert world.client("iwf").post("/api/v1/match/media", content=data).status_code == 403
    assert world.client("plat").post("/api/v1/match/media", content=b"").status_code == 422
    junk = world.client("plat").post("/api/v1/match/media", content=b"not an image at all")
    assert junk.status_code == 200 and junk.json()["matches"] == [] and junk.json()["error"]


def test_pdna_vectors_match_by_euclidean_distance(world: World) -> None:
    stored = bytes(range(144))
    (item_id,) = world.submit_ok("iwf", [item("v", pdna=stored.hex())])
    near = bytes(min(255, b + 3) for b in stored)  # distance 36
    far = bytes([255] * 72 + [0] * 72)  # distance about 2,050: beyond the default 1,800
    got = match(world, [{"pdna": near.hex()}, {"pdna": ",".join(map(str, far))}])
    assert [m["item"] for m in got[0]] == [item_id] and got[0][0]["distance"] == 36
    assert got[1] == []
    assert match(world, [{"pdna": near.hex()}], radius={"pdna": 10}) == [[]]


def test_the_fast_match_route_refuses_like_every_other_route(world: World) -> None:
    url = "/api/v1/match"
    body = {"fingerprints": [{"md5": md5_of(1)}]}
    anonymous = world.client().post(url, json=body)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert "API key is required" in anonymous.json()["error"]
    assert world.client(key="hh_000000000000_nope").post(url, json=body).status_code == 401
    assert "'member' role" in world.client("iwf").post(url, json=body).json()["error"]
    broken = world.client("plat").post(
        url, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and "JSON decode error" in broken.json()["error"]
    for bad, where in (
        ({"fingerprints": "md5"}, "body.fingerprints"),
        ({"fingerprints": [{"md5": md5_of(1)}], "radius": {"pdq": "far"}}, "body.radius.pdq"),
        ([1, 2], "body"),
    ):
        r = world.client("plat").post(url, json=bad)
        assert r.status_code == 422 and r.json()["error"].startswith(where), r.text
    r = world.client("plat").post(url, json={"fingerprints": [{"pdq": pdq_of(1)}], "radius": {"pdq": 99}})
    assert r.status_code == 422 and "radius for pdq" in r.json()["error"]


def test_a_match_body_sent_in_chunks_is_read_whole(world: World) -> None:
    """The fast route reads its body straight from the server: a chunked upload (no Content-Length,
    several pieces) gives the same answer as a plain one."""
    (item_id,) = world.submit_ok("iwf", [item(1)])
    body = orjson.dumps({"fingerprints": [{"md5": md5_of(2)}, {"pdq": flip_bits(pdq_of(1), 3)}]})
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    r = world.client("plat").post(
        "/api/v1/match", content=iter(pieces), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200, r.text
    assert "content-length" not in r.request.headers
    assert [[m["item"] for m in res["matches"]] for res in r.json()["results"]] == [[], [item_id]]


def test_the_match_route_is_documented_with_its_body_and_answer(world: World) -> None:
    doc = world.client().get("/openapi.json").json()
    post = doc["paths"]["/api/v1/match"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"fingerprints", "radius"} and body["required"] == ["fingerprints"]
    assert post["security"] == [{"HTTPBearer": []}]
    answer = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/MatchOut"}
    hit = doc["components"]["schemas"]["MatchHit"]["properties"]
    assert {"item", "signal", "distance", "classification", "contributors", "verifications"} <= set(hit)


def _engine_statements(hub: Hub) -> tuple[list[str], Callable[[], None]]:
    """Names of the threads that run SQL on `hub`'s engine from now on, and a way to stop counting.
    The test's own thread and the hub's background threads (the change-log follower, the match
    audit writer, a key's last-use update) are left out: what remains ran for a request."""
    ran: list[str] = []
    me = threading.current_thread()

    def executed(*_args: Any) -> None:
        thread = threading.current_thread()
        if thread is not me and not thread.name.startswith("hashhub-") and "last_used" not in thread.name:
            ran.append(thread.name)

    sa.event.listen(hub.engine, "before_cursor_execute", executed)
    return ran, lambda: sa.event.remove(hub.engine, "before_cursor_execute", executed)


def test_matches_read_no_sql_and_follow_writes_here_at_once_and_elsewhere_within_a_second(
    db_url: str,
) -> None:
    """Issue 12 on every backend: with keys cached, match requests run no SQL on PostgreSQL (a
    follower thread reads the change log, not the requests) and only catch-ups after commits on
    SQLite; this process's own write matches on the next request, another process's within a
    second, and a withdrawal elsewhere likewise stops matching within a second."""
    from tests.hub.conftest import open_hub, populate, serving

    hub, other = Hub(HubSettings(db=db_url, key_cache_seconds=60)), open_hub(db_url)
    try:
        keys = populate(hub)
        with serving(hub) as url:
            world = World(hub, url, keys)
            (mine,) = world.submit_ok("iwf", [item(1)])
            assert [m["item"] for m in match(world, [{"md5": md5_of(1)}])[0]] == [mine]  # at once
            ran, stop = _engine_statements(hub)
            try:
                for n in range(200):
                    assert len(match(world, [{"pdq": flip_bits(pdq_of(1), n % 20)}])[0]) == 1
                ingest.submit(other, orgs.acting_as(other.engine, "ncmec"), "verified", [item(2)])
                written = time.monotonic()
                while not match(world, [{"md5": md5_of(2)}])[0]:
                    assert time.monotonic() - written < 1.0, "another process's write unseen after 1 s"
                (theirs,) = match(world, [{"md5": md5_of(2)}])[0]
                feedback.withdraw(other, orgs.acting_as(other.engine, "ncmec"), int(theirs["item"]), "error")
                written = time.monotonic()
                while match(world, [{"md5": md5_of(2)}])[0]:
                    assert time.monotonic() - written < 1.0, "a withdrawal elsewhere unseen after 1 s"
            finally:
                stop()
            world.close()
    finally:
        other.close()
        hub.close()
    if hub.engine.dialect.name == "sqlite":
        # SQLite's change counter is read per request (microseconds, not through the engine); a
        # request that finds it moved catches up itself: a few statements per commit, not per request.
        assert len(ran) < 20, ran
    else:
        assert ran == []
