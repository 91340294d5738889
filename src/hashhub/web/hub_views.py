"""The hub's pages: dashboard, search, item pages, the dispute queue, recent changes, administration
and the audit log. Every action calls the same service function as the JSON API with the visitor's
principal, so roles and list grants are enforced in one place for both.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from hashhub import db, uploads
from hashhub.hub import audit, feedback, match, orgs
from hashhub.hub.auth import ROLES, Principal
from hashhub.hub.core import Hub
from hashhub.hub.errors import HubError, Invalid
from hashhub.web import charts, hub_queries, pages
from hashhub.web.pages import Link, PageError, Visitor, check_csrf, render

SEARCH_SIGNALS = ("pdq", "md5", "sha1", "sha256")
DONE = {
    "feedback": "Your feedback was recorded.",
    "withdraw": "The item was withdrawn: the feed now carries a tombstone (a delete) for it.",
    "confirm": "The item is active again.",
    "grant": "The list's access was updated.",
    "revoke": "The key was revoked; it stops working within seconds.",
    "list": "The list was created.",
}


def _explain(exc: Exception) -> tuple[int, str] | None:
    if isinstance(exc, HubError):
        return exc.status, exc.message
    if isinstance(exc, OperationalError):
        return 503, "The database is busy or unavailable; retry shortly."
    return None


def _verify(request: Request, key: str) -> Principal:
    return _hub(request).keys.verify(key)


def _nav(principal: Principal) -> list[Link]:
    links = [Link("/", "Dashboard")]
    if principal.has("member"):
        links.append(Link("/search", "Search"))
    links.append(Link("/changes", "Changes"))
    if principal.has("contributor"):
        links.append(Link("/disputes", "Disputes"))
    if principal.has("admin"):
        links += [Link("/admin", "Admin"), Link("/audit", "Audit log")]
    return links


def _hub(request: Request) -> Hub:
    return request.app.state.hub


router = pages.router()
Signed = Annotated[Visitor, Depends(pages.visitor)]
ItemId = Annotated[int, Path(ge=1, le=2**62)]
Before = Annotated[int | None, Query(ge=1, le=2**62)]


def _principal(who: Visitor) -> Principal:
    return who.identity


def _admin(who: Visitor) -> Principal:
    principal = _principal(who)
    principal.require("admin")
    return principal


# -- dashboard, search, items ---------------------------------------------------------------------


@router.get("/")
def dashboard(request: Request, who: Signed) -> Response:
    hub, principal = _hub(request), _principal(who)
    with db.read(hub.engine) as conn:
        scope = hub_queries.scope_of(conn, principal)
    if scope.empty:
        return render(request, "hub/dashboard.html", board=None, chart=None, scope=scope)
    board = hub_queries.dashboard(hub, scope, counts=request.app.state.web_counts)
    chart = charts.bar_chart(board.growth)
    return render(request, "hub/dashboard.html", board=board, chart=chart, scope=scope)


@router.get("/search")
def search(
    request: Request,
    who: Signed,
    q: Annotated[str, Query(max_length=20_000)] = "",
    signal: Annotated[str, Query(max_length=64)] = "pdq",
) -> Response:
    principal = _principal(who)
    principal.require("member")
    context: dict[str, Any] = {"q": q, "signal": signal, "signals": SEARCH_SIGNALS, "matches": None}
    if q.strip():
        try:
            result = match.match(_hub(request), principal, [{signal: q.strip()}])
        except Invalid as exc:
            problems = "; ".join(r["error"] for r in exc.extra.get("rejected", []))
            return render(request, "hub/search.html", 422, error=problems or exc.message, **context)
        context["matches"] = result["results"][0]["matches"]
    return render(request, "hub/search.html", **context)


@router.post("/search/file")
async def search_file(request: Request, who: Signed, csrf: str = Query("")) -> Response:
    """A file matched in memory (never written to disk), exactly like `POST /api/v1/match/media`."""
    check_csrf(who, csrf)
    hub, principal = _hub(request), _principal(who)
    principal.require("member")
    try:
        body = await uploads.read_body(request, hub.settings.max_upload_bytes)
        data, name = uploads.read_multipart(body, request.headers.get("content-type", ""))
    except uploads.UploadError as exc:
        raise PageError(exc.status, str(exc)) from None
    if not data:
        raise PageError(422, "Choose a file to search for.")
    result = await run_in_threadpool(match.match_media, hub, principal, data)
    context = {"q": "", "signal": "pdq", "signals": SEARCH_SIGNALS, "file": name or "upload"}
    return render(request, "hub/search.html", matches=result["matches"], hashed=result, **context)


@router.get("/items/{item_id}")
def item_page(request: Request, who: Signed, item_id: ItemId, done: str = "") -> Response:
    hub, principal = _hub(request), _principal(who)
    item = feedback.item_view(hub, principal, item_id)  # the API's visibility rules, or 403/404
    owner = "feedback" in item  # item_view adds feedback counts for the item's contributor only
    with db.read(hub.engine) as conn:
        facts = hub_queries.item_facts(conn, item_id)
        notes = hub_queries.item_feedback(conn, item_id) if owner else []
        trail = hub_queries.item_audit(conn, item_id) if principal.has("admin") else []
    return render(
        request,
        "hub/item.html",
        item=item,
        facts=facts,
        owner=owner,
        notes=notes,
        trail=trail,
        trail_shown=principal.has("admin"),
        member=principal.has("member") and not owner,
        done=DONE.get(done, ""),
    )


@router.post("/items/{item_id}/feedback")
def give_feedback(
    request: Request,
    who: Signed,
    item_id: ItemId,
    verdict: Annotated[str, Form(pattern="^(affirmative|negative)$")],
    reason: Annotated[str, Form(min_length=1, max_length=64)],
    note: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(who, csrf)
    feedback.give_feedback(_hub(request), _principal(who), item_id, verdict, reason.strip(), note)
    return RedirectResponse(f"/items/{item_id}?done=feedback", status_code=303)


@router.post("/items/{item_id}/{action}")
def contributor_action(
    request: Request,
    who: Signed,
    item_id: ItemId,
    action: Annotated[str, Path(pattern="^(withdraw|confirm)$")],
    reason: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form(pattern="^(item|disputes)$")] = "item",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(who, csrf)
    service = feedback.withdraw if action == "withdraw" else feedback.confirm
    service(_hub(request), _principal(who), item_id, reason.strip())
    target = f"/disputes?done={action}" if back == "disputes" else f"/items/{item_id}?done={action}"
    return RedirectResponse(target, status_code=303)


@router.get("/disputes")
def disputes(request: Request, who: Signed, before: Before = None, done: str = "") -> Response:
    hub, principal = _hub(request), _principal(who)
    principal.require("contributor")
    with db.read(hub.engine) as conn:
        page = hub_queries.disputed(conn, principal.org_id, before)
    return render(request, "hub/disputes.html", rows=page.rows, more=page.more, done=DONE.get(done, ""))


@router.get("/changes")
def recent_changes(request: Request, who: Signed, before: Before = None) -> Response:
    hub = _hub(request)
    with db.read(hub.engine) as conn:
        scope = hub_queries.scope_of(conn, _principal(who))
        page = hub_queries.recent_changes(conn, scope, before)
    return render(request, "hub/changes.html", rows=page.rows, more=page.more, before=before)


# -- administration (admins only, like /api/v1/orgs etc.) ------------------------------------------


def _admin_page(request: Request, status: int = 200, **context: Any) -> Response:
    engine = _hub(request).engine
    with db.read(engine) as conn:
        keys = hub_queries.keys(conn)
    return render(
        request,
        "hub/admin.html",
        status,
        orgs=orgs.list_orgs(engine),
        keys=keys,
        lists=orgs.all_lists(engine),
        roles=ROLES,
        **context,
    )


@router.get("/admin")
def admin(request: Request, who: Signed, done: str = "") -> Response:
    _admin(who)
    return _admin_page(request, done=DONE.get(done, ""))


@router.post("/admin/orgs")
def create_org(
    request: Request,
    who: Signed,
    name: Annotated[str, Form(max_length=200)],
    role: Annotated[list[str], Form()],
    kind: Annotated[str, Form(max_length=50)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(who, csrf)
    created = orgs.create_org(_hub(request).engine, name, role, kind, actor=_admin(who).org)
    return _admin_page(request, 201, new_key=created)


@router.post("/admin/orgs/{name}/keys")
def create_key(
    request: Request,
    who: Signed,
    name: Annotated[str, Path(max_length=200)],
    scope: Annotated[list[str] | None, Form()] = None,
    label: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(who, csrf)
    created = orgs.create_key(_hub(request).engine, name, scope, label, actor=_admin(who).org)
    return _admin_page(request, 201, new_key=created)


@router.post("/admin/keys/{key_id}/revoke")
def revoke_key(
    request: Request,
    who: Signed,
    key_id: Annotated[str, Path(max_length=64)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(who, csrf)
    hub = _hub(request)
    orgs.revoke_key(hub.engine, key_id, actor=_admin(who).org)
    hub.keys.forget()
    return RedirectResponse("/admin?done=revoke", status_code=303)


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


@router.post("/admin/lists")
def create_list(
    request: Request,
    who: Signed,
    name: Annotated[str, Form(max_length=100)],
    description: Annotated[str, Form(max_length=2000)] = "",
    read: Annotated[str, Form(max_length=5000)] = "",
    write: Annotated[str, Form(max_length=5000)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(who, csrf)
    engine = _hub(request).engine
    orgs.create_list(engine, name, _names(read), _names(write), description, actor=_admin(who).org)
    return RedirectResponse("/admin?done=list", status_code=303)


@router.post("/admin/grants")
def grant(
    request: Request,
    who: Signed,
    list_name: Annotated[str, Form(alias="list", max_length=100)],
    org: Annotated[str, Form(max_length=200)],
    read: Annotated[bool, Form()] = False,
    write: Annotated[bool, Form()] = False,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(who, csrf)
    orgs.grant(_hub(request).engine, list_name, org, read, write, actor=_admin(who).org)
    return RedirectResponse("/admin?done=grant", status_code=303)


@router.get("/audit")
def audit_log(request: Request, who: Signed, before: Before = None, verify: bool = False) -> Response:
    _admin(who)
    engine = _hub(request).engine
    with db.read(engine) as conn:
        page = hub_queries.audit_page(conn, before)
    checked = audit.verify(engine) if verify else None
    return render(request, "hub/audit.html", rows=page.rows, more=page.more, checked=checked)


def mount(app: FastAPI) -> None:
    """Serve the hub's pages from `app` (which holds the open hub in `app.state.hub`)."""
    site = pages.Site("hashhub hub", _verify, _explain, _nav, key_hint="organisation API key (hh_...)")
    app.state.web_counts = hub_queries.PoolCounts()
    pages.mount(app, site, router)
