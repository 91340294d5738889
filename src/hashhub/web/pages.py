"""What the hub's and the agent's pages share: templates, the signed-in visitor, CSRF checks, error
pages, and the sign-in / sign-out routes.

Each app describes itself once as a `Site` (how a key becomes an identity, which domain errors mean
which HTTP status, the navigation an identity sees). Routers built with `router()` turn those
errors, a missing session and bad form input into HTML pages with the right 4xx status, so a person
never sees a stack trace or a JSON body.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from hashhub.web import session as sessions
from hashhub.web.session import Sessions, WebSession

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

SECURITY_HEADERS = {
    # Everything is served from here; no inline script, no framing (clickjacking), no sniffing.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(ts: float | str | None) -> str:
    """Unix seconds or an ISO string, shown as UTC to the minute."""
    import datetime as dt

    if ts is None or ts == "":
        return "—"
    if isinstance(ts, str):
        try:
            moment = dt.datetime.fromisoformat(ts)
        except ValueError:
            return ts
    else:
        moment = dt.datetime.fromtimestamp(float(ts), dt.UTC)
    if moment.tzinfo is None:  # stored as UTC; SQLite drops the zone
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


templates.env.filters["when"] = _when
templates.env.filters["num"] = lambda n: f"{int(n or 0):,}"


class PageError(Exception):
    """Something the visitor can fix or must be told; shown as an error page with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInRequired(Exception):
    pass


@dataclass(frozen=True)
class Link:
    href: str
    label: str


@dataclass
class Site:
    """One app's UI: its title, how keys are checked, how its domain errors read."""

    title: str
    #: the key's identity (hub: a Principal), or a domain error for a bad key.
    verify: Callable[[Request, str], Any]
    #: (status, message) for a domain error this app raises, None for anything else.
    explain: Callable[[Exception], tuple[int, str] | None]
    #: the navigation links an identity may follow.
    nav: Callable[[Any], list[Link]]
    key_hint: str = "API key"
    sessions: Sessions = field(default_factory=Sessions)


@dataclass(frozen=True)
class Visitor:
    session: WebSession
    identity: Any


def site_of(request: Request) -> Site:
    return request.app.state.web_site


def render(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
    site = site_of(request)
    visitor: Visitor | None = getattr(request.state, "visitor", None)
    ctx = {
        "site": site,
        "visitor": visitor,
        "nav": site.nav(visitor.identity) if visitor else [],
        "csrf": visitor.session.csrf if visitor else "",
        "path": request.url.path,
        **context,
    }
    response = templates.TemplateResponse(request, template, ctx, status_code=code)
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status, status_code=status, message=message)


def visitor(request: Request) -> Visitor:
    """The signed-in visitor, their key checked again now (revoked keys end sessions)."""
    site = site_of(request)
    token = request.cookies.get(sessions.COOKIE)
    found = site.sessions.find(token)
    if found is None:
        raise SignInRequired()
    try:
        identity = site.verify(request, found.key)
    except Exception as exc:
        explained = site.explain(exc)
        if explained is None or explained[0] != 401:
            raise
        site.sessions.close(token)
        raise SignInRequired() from None
    request.state.visitor = Visitor(found, identity)
    return request.state.visitor


def check_csrf(who: Visitor, token: str) -> None:
    if not sessions.same(who.session.csrf, token):
        raise PageError(403, "This form expired or came from another site. Reload the page and try again.")


def _sign_in_redirect(request: Request) -> Response:
    target = request.url.path if request.method == "GET" else "/"
    if request.method == "GET" and request.url.query:
        target += f"?{request.url.query}"
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _invalid(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    loc = list(first.get("loc", ()))
    part = {"body": "form's", "path": "address's", "query": "address's"}.get(str(loc[0]) if loc else "", "")
    field = " ".join(str(p) for p in loc[1:]) or "input"
    return f"The {part} {field} is not valid: {first.get('msg', 'invalid value')}.".replace("  ", " ")


class WebRoute(APIRoute):
    """A route whose errors become HTML pages (the JSON API's handlers are left alone)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return _sign_in_redirect(request)
            except PageError as exc:
                return error_page(request, exc.status, exc.message)
            except RequestValidationError as exc:
                return error_page(request, 422, _invalid(exc))
            except Exception as exc:
                explained = site_of(request).explain(exc)
                if explained is None:
                    raise
                return error_page(request, *explained)

        return run


def router() -> APIRouter:
    """A router for pages: HTML errors, and kept out of the API's OpenAPI document."""
    return APIRouter(route_class=WebRoute, include_in_schema=False)


def _safe_next(target: str) -> str:
    """Only paths on this site (never `//elsewhere` or a full URL) are followed after sign-in."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def auth_routes() -> APIRouter:
    """`/login` (a form with an input named `key`) and `/logout`."""
    routes = router()

    def login_form(request: Request, status: int = 200, error: str = "", next_: str = "/") -> Response:
        token = sessions.login_token(request)
        response = render(request, "login.html", status, error=error, login_csrf=token, next=next_)
        sessions.set_cookie(request, response, sessions.LOGIN_COOKIE, token, max_age=3600)
        return response

    @routes.get("/login")
    def login_page(request: Request, next: str = "/") -> Response:
        site = site_of(request)
        if site.sessions.find(request.cookies.get(sessions.COOKIE)):
            return RedirectResponse(_safe_next(next), status_code=303)
        return login_form(request, next_=_safe_next(next))

    @routes.post("/login")
    def login(
        request: Request,
        key: str = Form("", max_length=1000),
        csrf: str = Form(""),
        next: str = Form("/", max_length=2000),
    ) -> Response:
        site, target = site_of(request), _safe_next(next)
        if not sessions.same(request.cookies.get(sessions.LOGIN_COOKIE), csrf):
            return login_form(request, 403, "The sign-in form expired; please try again.", target)
        key = key.strip()
        if not key:
            return login_form(request, 422, f"Enter your {site.key_hint}.", target)
        try:
            site.verify(request, key)
        except Exception as exc:
            explained = site.explain(exc)
            if explained is None:
                raise
            return login_form(request, explained[0], explained[1], target)
        opened = site.sessions.open(key)
        response = RedirectResponse(target, status_code=303)
        sessions.set_cookie(request, response, sessions.COOKIE, opened.token, max_age=None)
        response.delete_cookie(sessions.LOGIN_COOKIE, path="/")
        return response

    @routes.get("/logout")
    def logout_page(request: Request) -> Response:
        if site_of(request).sessions.find(request.cookies.get(sessions.COOKIE)) is None:
            return RedirectResponse("/login", status_code=303)
        visitor(request)
        return render(request, "logout.html")

    @routes.post("/logout")
    def logout(request: Request, who: Visitor = Depends(visitor), csrf: str = Form("")) -> Response:
        check_csrf(who, csrf)
        site_of(request).sessions.close(who.session.token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(sessions.COOKIE, path="/")
        return response

    return routes


def mount(app: FastAPI, site: Site, *routers: APIRouter) -> None:
    """Add the site's pages and its static files to `app` (under `/static`)."""
    app.state.web_site = site
    app.include_router(auth_routes())
    for r in routers:
        app.include_router(r)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="web-static")
