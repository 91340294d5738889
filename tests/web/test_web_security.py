"""Sessions, CSRF and the API's paths, checked over plain HTTP against the same real servers."""

from __future__ import annotations

import re
from contextlib import closing

import httpx

from .conftest import World


def _signed_in(base: str, key: str) -> tuple[httpx.Client, str]:
    """A client holding a session cookie, and the session's form token."""
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    answer = client.post("/login", data={"key": key, "csrf": token, "next": "/"})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    page = client.get("/")
    return client, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_session_cookie_is_httponly_and_samesite_and_holds_no_key(world: World) -> None:
    with httpx.Client(base_url=world.hub, timeout=30) as client:
        form = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        answer = client.post("/login", data={"key": world.keys["platform"], "csrf": token})
    assert form.status_code == 200 and 'name="key"' in form.text
    assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("hashhub_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert world.keys["platform"].split("_")[2] not in cookie


def test_sign_in_without_the_form_token_is_refused(world: World) -> None:
    answer = httpx.post(f"{world.hub}/login", data={"key": world.keys["platform"], "csrf": "forged"})
    assert answer.status_code == 403 and "hashhub_session" not in answer.headers.get("set-cookie", "")


def test_a_form_posted_without_the_session_token_changes_nothing(world: World) -> None:
    client, _token = _signed_in(world.hub, world.keys["hotline"])
    item = world.ids[7]
    with closing(client):
        answer = client.post(f"/items/{item}/withdraw", data={"csrf": "wrong", "reason": "x"})
    assert answer.status_code == 403 and "expired or came from another site" in answer.text
    assert world.api("hotline", "GET", f"/api/v1/items/{item}").json()["status"] == "active"


def test_roles_on_actions_match_the_api(world: World) -> None:
    member, token = _signed_in(world.hub, world.keys["platform"])
    with closing(member):
        answer = member.post(f"/items/{world.ids[8]}/withdraw", data={"csrf": token})
    assert answer.status_code == 403 and "contributor" in answer.text  # same rule as the API
    contributor, token = _signed_in(world.hub, world.keys["hotline"])
    with closing(contributor):
        answer = contributor.post(
            f"/items/{world.ids[8]}/feedback", data={"csrf": token, "verdict": "negative", "reason": "x"}
        )
        searched = contributor.get("/search?q=00&signal=pdq")
        bad = contributor.post(f"/items/{world.ids[8]}/feedback", data={"csrf": token, "verdict": "maybe"})
    assert answer.status_code == 403 and "member" in answer.text
    assert searched.status_code == 403
    assert bad.status_code == 422 and "not valid" in bad.text


def test_sign_in_never_redirects_off_site(world: World) -> None:
    with httpx.Client(base_url=world.hub, timeout=30) as client:
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
        answer = client.post(
            "/login", data={"key": world.keys["platform"], "csrf": token, "next": "//evil.example/x"}
        )
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_the_json_api_is_untouched(world: World) -> None:
    me = world.api("platform", "GET", "/api/v1/me")
    assert me.status_code == 200 and me.json()["org"] == "platform"
    unauthenticated = httpx.get(f"{world.hub}/api/v1/stats")
    assert unauthenticated.status_code == 401 and "error" in unauthenticated.json()
    paths = httpx.get(f"{world.hub}/openapi.json").json()["paths"]
    assert not {"/login", "/logout", "/", "/admin"} & set(paths)
    agent = httpx.get(
        f"{world.agent}/api/v1/status", headers={"Authorization": f"Bearer {world.keys['agent']}"}
    )
    assert agent.status_code == 200 and agent.json()["hubs"]


def test_revoking_a_key_ends_its_browser_sessions(world: World) -> None:
    spare = world.api("hub-admin", "POST", "/api/v1/orgs/platform/keys", json={"label": "laptop"}).json()
    browser, _token = _signed_in(world.hub, spare["api_key"])
    with closing(browser):
        assert browser.get("/").status_code == 200
        revoked = world.api("hub-admin", "POST", f"/api/v1/keys/{spare['key_id']}/revoke")
        assert revoked.status_code == 200
        after = browser.get("/changes")
    assert after.status_code == 303 and after.headers["location"].startswith("/login")
