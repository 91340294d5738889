"""Who may do what: every endpoint x every role x own/other item, plus missing, bad and revoked keys.

Roles in the matrix: `admin`; `iwf` (contributor, owns the items); `ncmec` (another contributor, also
allowed to write the list); `plat` (member with a read grant); `outsider` (member without one).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from tests.hub.conftest import World, item, md5_of

from hashhub.hub import orgs

ROLES = ("admin", "iwf", "ncmec", "plat", "outsider")
_names = itertools.count()


def _matrix(
    ids: dict[str, str],
) -> list[tuple[str, str, Callable[[], Any], dict[str, int | tuple[int, ...]]]]:
    own, withdrawable, disputable = ids["own"], ids["withdraw"], ids["confirm"]
    fresh = lambda: f"org-{next(_names)}"  # noqa: E731 - each admin call creates a new name
    return [
        (
            "POST",
            "/api/v1/items",
            lambda: {"list": "verified", "items": [item(f"m{next(_names)}")]},
            {"admin": 403, "iwf": 200, "ncmec": 200, "plat": 403, "outsider": 403},
        ),
        (
            "GET",
            "/api/v1/feed",
            lambda: None,
            {"admin": 403, "iwf": 403, "ncmec": 403, "plat": 200, "outsider": 200},
        ),
        (
            "GET",
            "/api/v1/feed?list=verified",
            lambda: None,
            {"admin": 403, "iwf": 403, "ncmec": 403, "plat": 200, "outsider": 403},
        ),
        (
            "GET",
            "/api/v1/snapshot",
            lambda: None,
            {"admin": 403, "iwf": 403, "ncmec": 403, "plat": 200, "outsider": 200},
        ),
        (
            "GET",
            "/api/v1/snapshot?list=verified",
            lambda: None,
            {"admin": 403, "iwf": 403, "ncmec": 403, "plat": 200, "outsider": 403},
        ),
        (
            "POST",
            "/api/v1/match",
            lambda: {"fingerprints": [{"md5": md5_of(1)}]},
            {"admin": 403, "iwf": 403, "ncmec": 403, "plat": 200, "outsider": 200},
        ),
        (
            "GET",
            f"/api/v1/items/{own}",
            lambda: None,
            {"admin": 403, "iwf": 200, "ncmec": 403, "plat": 200, "outsider": 403},
        ),
        (
            "POST",
            f"/api/v1/items/{own}/feedback",
            lambda: {"verdict": "affirmative", "reason": "confirmed"},
            {"admin": 403, "iwf": 403, "ncmec": 403, "plat": 200, "outsider": 403},
        ),
        (
            "POST",
            f"/api/v1/items/{own}/hits",
            lambda: {"count": 1},
            {"admin": 403, "iwf": 403, "ncmec": 403, "plat": 200, "outsider": 403},
        ),
        (
            "POST",
            f"/api/v1/items/{disputable}/confirm",
            lambda: {"reason": "x"},
            {"admin": 403, "iwf": 409, "ncmec": 403, "plat": 403, "outsider": 403},
        ),  # 409: allowed, not disputed
        (
            "POST",
            f"/api/v1/items/{withdrawable}/withdraw",
            lambda: {"reason": "x"},
            {"admin": 403, "ncmec": 403, "plat": 403, "outsider": 403, "iwf": 200},
        ),  # owner last: it is final
        ("GET", "/api/v1/stats", lambda: None, dict.fromkeys(ROLES, 200)),
        ("GET", "/api/v1/me", lambda: None, dict.fromkeys(ROLES, 200)),
        ("GET", "/api/v1/schemes", lambda: None, dict.fromkeys(ROLES, 200)),
        ("GET", "/api/v1/orgs", lambda: None, {**dict.fromkeys(ROLES, 403), "admin": 200}),
        (
            "POST",
            "/api/v1/orgs",
            lambda: {"name": fresh(), "roles": ["member"]},
            {**dict.fromkeys(ROLES, 403), "admin": 201},
        ),
        (
            "POST",
            "/api/v1/orgs/plat/keys",
            lambda: {"label": "second"},
            {**dict.fromkeys(ROLES, 403), "admin": 201},
        ),
        ("GET", "/api/v1/lists", lambda: None, {**dict.fromkeys(ROLES, 403), "admin": 200}),
        ("POST", "/api/v1/lists", lambda: {"name": fresh()}, {**dict.fromkeys(ROLES, 403), "admin": 201}),
        (
            "POST",
            "/api/v1/lists/verified/grants",
            lambda: {"org": "plat2", "read": True},
            {**dict.fromkeys(ROLES, 403), "admin": 200},
        ),
        (
            "POST",
            "/api/v1/schemes",
            lambda: {"name": fresh(), "values": ["x"]},
            {**dict.fromkeys(ROLES, 403), "admin": 201},
        ),
        ("GET", "/api/v1/audit/verify", lambda: None, {**dict.fromkeys(ROLES, 403), "admin": 200}),
    ]


def test_every_endpoint_for_every_role(world: World) -> None:
    own, withdraw, confirm = world.submit_ok("iwf", [item(1), item(2), item(3)])
    world.submit_ok("ncmec", [item(4)], list_name="restricted")
    failures = []
    for method, path, body, expected in _matrix({"own": own, "withdraw": withdraw, "confirm": confirm}):
        for role, status in expected.items():
            r = world.client(role).request(method, path, json=body())
            if r.status_code != status:
                failures.append(f"{role} {method} {path}: {r.status_code} (expected {status}) {r.text[:120]}")
            elif status >= 400:
                assert r.json()["error"], f"{role} {method} {path} gave no message"
    assert not failures, "\n".join(failures)


def test_members_see_only_granted_lists_in_feed_snapshot_and_match(world: World) -> None:
    world.submit_ok("iwf", [item(1)])
    world.submit_ok("ncmec", [item(2)], list_name="restricted")
    outsider = world.client("outsider")
    assert [c["item"]["list"] for c in outsider.get("/api/v1/feed").json()["changes"]] == ["restricted"]
    assert len(outsider.get("/api/v1/snapshot").text.splitlines()) == 2
    hit = outsider.post("/api/v1/match", json={"fingerprints": [{"md5": md5_of(1)}]}).json()
    assert hit["results"][0]["matches"] == []


def test_keys_missing_malformed_unknown_or_revoked_get_401(world: World) -> None:
    paths = [
        ("GET", "/api/v1/feed"),
        ("POST", "/api/v1/items"),
        ("POST", "/api/v1/match"),
        ("GET", "/api/v1/orgs"),
    ]
    bad_keys = [None, "nonsense", "hh_000000000000_wrong", world.keys["plat"][:-2] + "xx"]
    for (method, path), key in itertools.product(paths, bad_keys):
        r = world.client(key=key or "").request(method, path, json={})
        assert r.status_code == 401, (method, path, key, r.text)
        assert r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
    assert world.client().get("/healthz").json() == {"status": "ok"}

    extra = orgs.create_key(world.hub.engine, "plat", label="to revoke")
    assert world.client(key=extra["api_key"]).get("/api/v1/feed").status_code == 200
    r = world.client("admin").post(f"/api/v1/keys/{extra['key_id']}/revoke")
    assert r.status_code == 200
    revoked = world.client(key=extra["api_key"]).get("/api/v1/feed")
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]
    assert world.client("plat").get("/api/v1/feed").status_code == 200  # other keys unaffected


def test_a_key_scoped_to_one_role_cannot_use_the_others(world: World) -> None:
    scoped = orgs.create_key(world.hub.engine, "both", scopes=["member"])
    client = world.client(key=scoped["api_key"])
    assert client.get("/api/v1/feed").status_code == 200
    r = client.post("/api/v1/items", json={"list": "verified", "items": [item(1)]})
    assert r.status_code == 403 and "contributor" in r.json()["error"]


def test_keys_are_stored_only_as_salted_hashes(world: World) -> None:
    import sqlalchemy as sa

    from hashhub.hub.models import api_keys

    with world.hub.engine.connect() as conn:
        rows = conn.execute(sa.select(api_keys)).all()
    secrets = {k.split("_", 2)[2] for k in world.keys.values()}
    for row in rows:
        stored = b"".join([row.salt, row.digest]) + row.id.encode()
        assert not any(s.encode() in stored for s in secrets)
    assert len({row.salt for row in rows}) == len(rows)
    me = world.client("plat").get("/api/v1/me").json()
    assert me["org"] == "plat" and me["roles"] == ["member"]
