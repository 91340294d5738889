"""The agent's pages: sync status per hub, recent scans and actions, the review queue (confirm ->
report draft, reject -> negative feedback with a reason), report drafts and the policy in force.

Sign-in takes the agent's own key, the one its API checks (`HASHHUB_AGENT_KEY`); actions call the
same review functions as `/api/v1/reviews`.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from hashhub.agent import review
from hashhub.agent.reports import ReportNotFound
from hashhub.agent.review import ReviewError, ReviewNotFound
from hashhub.agent.runtime import AgentRuntime
from hashhub.web import agent_queries, pages
from hashhub.web.pages import Link, Visitor, check_csrf, render

OPERATOR = "agent operator"


class BadAgentKey(Exception):
    pass


def _runtime(request: Request) -> AgentRuntime:
    return request.app.state.runtime


def _verify(request: Request, key: str) -> str:
    # The same check as the API's `require_key`: one key, compared in constant time.
    if not hmac.compare_digest(key.strip().encode(), _runtime(request).settings.agent_key.encode()):
        raise BadAgentKey("The agent does not know this key (see `hashhub agent serve` output).")
    return OPERATOR


def _explain(exc: Exception) -> tuple[int, str] | None:
    if isinstance(exc, BadAgentKey):
        return 401, str(exc)
    if isinstance(exc, ReviewNotFound | ReportNotFound):
        return 404, str(exc)
    if isinstance(exc, ReviewError):
        return 409, str(exc)
    return None


def _nav(_identity: Any) -> list[Link]:
    return [
        Link("/", "Status"),
        Link("/reviews", "Review queue"),
        Link("/reports", "Reports"),
        Link("/policy", "Policy"),
    ]


router = pages.router()
Signed = Annotated[Visitor, Depends(pages.visitor)]
ReviewId = Annotated[int, Path(ge=1, le=2**62)]
Before = Annotated[int | None, Query(ge=1, le=2**62)]


def _age(iso: str | None) -> str:
    if not iso:
        return "never synced"
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:  # SQLite hands back the stored UTC time without its zone
        moment = moment.replace(tzinfo=UTC)
    seconds = max(0, int((datetime.now(UTC) - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


@router.get("/")
def status(request: Request, who: Signed, before: Before = None, synced: bool = False) -> Response:
    runtime = _runtime(request)
    state = runtime.status()
    unsent = agent_queries.unsent(runtime.store)
    hubs = []
    for hub in runtime.store.hubs():
        public = hub.public()
        hubs.append({**public, "age": _age(public["last_sync_at"]), "unsent": unsent.get(hub.id, 0)})
    decisions = agent_queries.recent_decisions(runtime.store, before)
    return render(
        request,
        "agent/status.html",
        state=state,
        hubs=hubs,
        decisions=decisions,
        reviews=agent_queries.review_counts(runtime.store),
        more=decisions[-1]["id"] if len(decisions) == agent_queries.PAGE else None,
        synced=synced,
    )


@router.post("/sync")
async def sync_now(request: Request, who: Signed, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(who, csrf)
    await run_in_threadpool(_runtime(request).sync_once)
    return RedirectResponse("/?synced=true", status_code=303)


@router.get("/reviews")
def reviews(
    request: Request,
    who: Signed,
    status: Annotated[str, Query(pattern="^(pending|confirmed|rejected|all)$")] = "pending",
    done: Annotated[str, Query(pattern="^(confirmed|rejected|)$")] = "",
    report: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    entries = review.list_reviews(_runtime(request).store, None if status == "all" else status, 100)
    return render(
        request,
        "agent/reviews.html",
        entries=entries,
        status=status,
        done=done,
        report=report,
        reasons=review.REJECT_REASONS,
    )


@router.post("/reviews/{review_id}/confirm")
def confirm(
    request: Request,
    who: Signed,
    review_id: ReviewId,
    reviewer: Annotated[str, Form(max_length=200)] = "",
    viewed: Annotated[bool, Form()] = False,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(who, csrf)
    out = review.confirm(_runtime(request).store, review_id, reviewer=reviewer.strip() or None, viewed=viewed)
    return RedirectResponse(f"/reviews?done=confirmed&report={out['report']}", status_code=303)


@router.post("/reviews/{review_id}/reject")
def reject(
    request: Request,
    who: Signed,
    review_id: ReviewId,
    reason: Annotated[str, Form(max_length=review.MAX_REASON)] = "",
    note: Annotated[str, Form(max_length=review.MAX_NOTE)] = "",
    reviewer: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(who, csrf)
    review.reject(_runtime(request).store, review_id, reason, note=note, reviewer=reviewer.strip() or None)
    return RedirectResponse("/reviews?done=rejected", status_code=303)


@router.get("/reports")
def reports(request: Request, who: Signed, before: Before = None) -> Response:
    rows = agent_queries.recent_reports(_runtime(request).store, before)
    more = rows[-1]["id"] if len(rows) == agent_queries.PAGE else None
    return render(request, "agent/reports.html", rows=rows, more=more)


@router.get("/policy")
def policy(request: Request, who: Signed) -> Response:
    runtime = _runtime(request)
    described = runtime.scanner.policy.describe()
    return render(request, "agent/policy.html", policy=described, settings=runtime.settings)


def mount(app: FastAPI) -> None:
    """Serve the agent's pages from `app` (which holds the running agent in `app.state.runtime`)."""
    site = pages.Site("hashhub agent", _verify, _explain, _nav, key_hint="agent key")
    pages.mount(app, site, router)
