"""The hub's browser UI in headless Chromium against a real `hashhub hub serve` on loopback."""

from __future__ import annotations

import re

from .conftest import World, shot, sign_in, unlabelled


def _flip(pdq: str, bits: int) -> str:
    """The PDQ with its lowest `bits` bits inverted: a near-duplicate at exactly that distance."""
    value = int(pdq, 16) ^ ((1 << bits) - 1)
    return f"{value:064x}"


def test_sign_in_search_a_hash_and_open_the_match(page, world: World) -> None:
    page.goto(f"{world.hub}/login")
    shot(page, "login")
    sign_in(page, world.hub, world.keys["platform"])
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert "12" in page.locator(".figures li").first.inner_text()  # every listed photo is visible
    assert page.get_by_role("link", name="Admin").count() == 0  # a member sees no admin link
    shot(page, "hub-dashboard")

    page.get_by_role("link", name="Search").click()
    page.get_by_label("Fingerprint type").select_option("pdq")
    page.get_by_label("Value (hex)").fill(_flip(world.rows[4]["pdq"], 5))
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.locator("table.results tbody tr")
    assert results.count() == 1
    row = results.first
    assert row.get_by_role("link").inner_text() == f"Item {world.ids[4]}"
    assert row.locator("td.distance").inner_text() == "5"
    assert "hotline" in row.inner_text() and "industry A1" in row.inner_text()
    shot(page, "hub-search")
    assert unlabelled(page) == []

    row.get_by_role("link").click()
    assert page.get_by_role("heading", name=re.compile(f"Item {world.ids[4]}")).is_visible()
    fingerprints = page.locator("section", has=page.get_by_role("heading", name="Fingerprints"))
    assert world.rows[4]["pdq"] in fingerprints.inner_text()
    assert world.rows[4]["md5"] in fingerprints.inner_text()
    assert "hotline" in page.locator("section", has_text="Provenance").inner_text()
    shot(page, "hub-item")
    assert unlabelled(page) == []


def test_a_bad_hash_or_key_gets_a_message_not_a_crash(page, world: World) -> None:
    page.goto(f"{world.hub}/login")
    page.get_by_label("Your").fill("hh_000000000000_not-a-real-secret")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "The API key is not valid."
    assert page.url.startswith(f"{world.hub}/login")

    sign_in(page, world.hub, world.keys["platform"])
    response = page.goto(f"{world.hub}/search?signal=pdq&q=not-hex")
    assert response.status == 422
    assert "64 hexadecimal characters" in page.get_by_role("alert").inner_text()


def test_dispute_then_withdraw_puts_a_tombstone_in_the_feed(page, other_page, world: World) -> None:
    item = world.ids[5]
    # The contributor's open disputes before (other tests of the session may have disputed items).
    sign_in(other_page, world.hub, world.keys["hotline"])
    disputes = other_page.get_by_role("link", name=re.compile("open disputes on your items"))
    before = int(disputes.inner_text().split()[0])
    # A member disputes the item from its page.
    sign_in(page, world.hub, world.keys["platform"])
    page.goto(f"{world.hub}/items/{item}")
    page.get_by_label("No: dispute it (negative)").check()
    page.get_by_label("Reason (a short code)").select_option("wrong_grade")
    page.get_by_role("button", name="Send feedback").click()
    assert page.get_by_role("status").inner_text() == "Your feedback was recorded."
    assert page.locator("h1 .status").inner_text() == "disputed"

    # The contributor's dashboard counts it at once (no background count) and leads to the queue.
    other_page.reload()
    assert int(disputes.inner_text().split()[0]) == before + 1
    disputes.click()
    queued = other_page.locator("tbody tr", has=other_page.get_by_role("link", name=f"Item {item}"))
    assert "wrong_grade" in queued.inner_text()
    shot(other_page, "hub-disputes")
    queued.get_by_role("button", name=f"Withdraw item {item}").click()
    assert "tombstone" in other_page.get_by_role("status").inner_text()
    assert other_page.get_by_role("link", name=f"Item {item}").count() == 0

    # Both see the tombstone in the changes page, and the JSON feed carries the same delete.
    page.get_by_role("link", name="Changes").click()
    newest = page.locator("tbody tr").first
    assert f"Item {item}" in newest.inner_text() and "tombstone" in newest.inner_text()
    feed = world.api("platform", "GET", "/api/v1/feed", params={"after": 0, "limit": 1000}).json()
    assert feed["changes"][-1] == {"cursor": feed["next"], "op": "delete", "id": item}
    page.goto(f"{world.hub}/items/{item}")
    assert page.locator("h1 .status").inner_text() == "withdrawn"
    assert page.get_by_role("button", name="Send feedback").count() == 0


def test_a_member_cannot_reach_admin_pages_and_an_admin_can(page, other_page, world: World) -> None:
    sign_in(page, world.hub, world.keys["platform"])
    for path in ("/admin", "/audit"):
        response = page.goto(f"{world.hub}{path}")
        assert response.status == 403
        assert "needs the 'admin' role" in page.get_by_role("alert").inner_text()
    response = page.request.post(f"{world.hub}/admin/orgs", form={"name": "sneaky", "role": "admin"})
    assert response.status == 403  # no form token, and no admin role either
    assert "sneaky" not in str(world.api("hub-admin", "GET", "/api/v1/orgs").json())

    sign_in(other_page, world.hub, world.keys["hub-admin"])
    other_page.get_by_role("link", name="Admin").click()
    other_page.get_by_label("Name", exact=True).fill("newcomer")
    other_page.get_by_label("member").check()
    other_page.get_by_role("button", name="Create organisation and first key").click()
    key = other_page.locator("#new-key-value").inner_text()
    assert key.startswith("hh_")
    assert world_me(world, key) == {"org": "newcomer", "roles": ["member"]}
    shot(other_page, "hub-admin")
    assert unlabelled(other_page) == []
    other_page.get_by_role("link", name="Audit log").click()
    assert "org.create" in other_page.locator("tbody tr").first.inner_text()
    other_page.get_by_role("link", name="Verify the whole chain").click()
    assert "is intact" in other_page.get_by_role("status").inner_text()


def world_me(world: World, key: str) -> dict:
    import httpx

    me = httpx.get(f"{world.hub}/api/v1/me", headers={"Authorization": f"Bearer {key}"}).json()
    return {"org": me["org"], "roles": me["roles"]}


def test_sign_out_ends_the_session(page, world: World) -> None:
    sign_in(page, world.hub, world.keys["hotline"])
    page.get_by_role("button", name="Sign out").click()
    assert page.url.startswith(f"{world.hub}/login")
    page.goto(f"{world.hub}/disputes")
    assert page.url == f"{world.hub}/login?next=%2Fdisputes"
    sign_in_again = page.get_by_label("Your")
    sign_in_again.fill(world.keys["hotline"])
    sign_in_again.press("Enter")  # keyboard only
    page.wait_for_url(f"{world.hub}/disputes")


def test_search_by_uploaded_file_finds_the_listed_photo(page, world: World, corpus) -> None:
    sign_in(page, world.hub, world.keys["platform"])
    page.goto(f"{world.hub}/search")
    page.get_by_label("Image or video file").set_input_files(str(corpus / "photos" / world.rows[2]["file"]))
    page.get_by_role("button", name="Hash and search").click()
    assert world.rows[2]["md5"] in page.locator("section", has_text="Fingerprints of").inner_text()
    best = page.locator("table.results tbody tr").first
    assert best.get_by_role("link").inner_text() == f"Item {world.ids[2]}"
    assert best.locator("td.distance").inner_text() == "0"
