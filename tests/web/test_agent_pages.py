"""The agent's browser UI in headless Chromium against a real `hashhub agent serve` on loopback."""

from __future__ import annotations

from .conftest import World, shot, sign_in, unlabelled


def test_status_shows_the_followed_hub_and_recent_actions(page, world: World) -> None:
    sign_in(page, world.agent, world.keys["agent"])
    assert page.get_by_role("heading", name="Agent status").is_visible()
    hubs = page.locator("section", has=page.get_by_role("heading", name="Followed hubs"))
    row = hubs.locator("tbody tr").first
    assert world.hub in row.inner_text() and "none" in row.inner_text()  # no sync error
    assert int(row.locator("td.num").first.inner_text()) > 0  # the feed cursor it reached
    actions = page.locator("section", has=page.get_by_role("heading", name="Recent matches and actions"))
    text = actions.inner_text()
    assert "block_and_report" in text and "review" in text and f"upload-{world.rows[0]['file']}" in text
    shot(page, "agent-status")
    page.get_by_role("link", name="Policy").click()
    assert "exact-block-report" in page.locator("tbody").inner_text()


def test_review_queue_confirm_drafts_a_report_and_reject_sends_feedback(page, world: World) -> None:
    sign_in(page, world.agent, world.keys["agent"])
    page.get_by_role("link", name="Review queue").click()
    reviews = page.locator("article.review")
    assert reviews.count() == 2
    shot(page, "agent-review-queue")
    assert unlabelled(page) == []
    first, second = reviews.nth(0), reviews.nth(1)
    assert f"upload-{world.rows[10]['file']}" in first.inner_text()
    assert f"upload-{world.rows[11]['file']}" in second.inner_text()

    first.get_by_label("Reviewer").first.fill("analyst 7")
    first.get_by_label("I viewed the file").check()
    first.get_by_role("button", name="Confirm match and draft a report").click()
    assert "Report draft #" in page.get_by_role("status").inner_text()
    assert page.locator("article.review").count() == 1

    remaining = page.locator("article.review").first
    remaining.get_by_label("Reason").select_option("wrong_match")
    remaining.get_by_label("Note (optional)").fill("a different building")
    remaining.get_by_role("button", name="Reject match").click()
    assert page.get_by_role("status").inner_text().startswith("Rejected.")
    assert page.locator("article.review").count() == 0

    page.get_by_role("link", name="Rejected").click()
    assert "wrong_match: a different building" in page.locator("article.review").inner_text()
    page.get_by_role("link", name="Reports", exact=True).click()
    draft = page.locator("tbody tr", has_text=f"upload-{world.rows[10]['file']}")
    assert "analyst 7" in draft.inner_text() and "yes" in draft.inner_text()

    # "Sync now" delivers the queued feedback; the hub's contributor sees the negative verdict.
    page.get_by_role("link", name="Status").click()
    page.get_by_role("button", name="Sync now").click()
    assert "Synced" in page.get_by_role("status").inner_text()
    item = world.ids[11]
    seen = world.api("hotline", "GET", f"/api/v1/items/{item}").json()
    assert seen["feedback"].get("negative") == 1


def test_a_wrong_agent_key_is_refused(page, world: World) -> None:
    page.goto(f"{world.agent}/login")
    page.get_by_label("Your").fill(world.keys["platform"])  # a hub key is not the agent's key
    page.get_by_role("button", name="Sign in").click()
    assert "does not know this key" in page.get_by_role("alert").inner_text()
    response = page.goto(f"{world.agent}/reviews")
    assert page.url.startswith(f"{world.agent}/login") and response.status == 200
