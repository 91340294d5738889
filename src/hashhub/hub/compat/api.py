"""HTTP edges of the peer protocols: NCMEC v2 (XML) and StopNCII v1 (JSON), thin over the services.

Each protocol is mounted twice: over every list the member reads (`/compat/ncmec`,
`/compat/stopncii/v1`) and over one list, like NCMEC's separate environments
(`/compat/ncmec/lists/{list}`, `/compat/stopncii/lists/{list}/v1`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi import Path as FastPath
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials as Bearer
from fastapi.security import HTTPBasic, HTTPBasicCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hashhub.hub import auth, feedback
from hashhub.hub.api.deps import HubDep, json_response
from hashhub.hub.compat import entries, ncmec, stopncii
from hashhub.hub.errors import HubError, NotFound, Unauthorized

NCMEC_PREFIXES = ("/compat/ncmec", "/compat/ncmec/lists/{list_name}")
STOPNCII_PREFIXES = ("/compat/stopncii/v1", "/compat/stopncii/lists/{list_name}/v1")
_XML = "application/xml"


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=_XML)


class XmlErrorRoute(APIRoute):
    """NCMEC clients expect XML whatever happens: domain and validation errors answer in XML too."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except HubError as exc:
                response = _xml(ncmec.error_document(exc.message), exc.status)
                if exc.status == 401:
                    response.headers["WWW-Authenticate"] = 'Basic realm="hashhub"'
                return response
            except RequestValidationError as exc:
                first = (exc.errors() or [{"loc": (), "msg": "invalid request"}])[0]
                where = ".".join(str(p) for p in first.get("loc", ()))
                return _xml(ncmec.error_document(f"{where}: {first.get('msg')}"), 422)

        return answer


def _scope(request: Request) -> str | None:
    """The list a per-list mount names, or None for every readable list."""
    return request.path_params.get("list_name")


Scope = Annotated[str | None, Depends(_scope)]
_basic = HTTPBasic(auto_error=False, description="user: the organisation's name; password: its API key")
_bearer = HTTPBearer(auto_error=False)


def _ncmec_caller(
    hub: HubDep,
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    bearer: Annotated[Bearer | None, Depends(_bearer)],
) -> auth.Principal:
    if basic is None:
        return hub.keys.verify(bearer.credentials if bearer else None)
    principal = hub.keys.verify(basic.password)
    if basic.username != principal.org:
        raise Unauthorized("The user name must be the name of the organisation the API key belongs to.")
    return principal


def _stopncii_caller(
    hub: HubDep,
    functions_key: Annotated[str | None, Header(alias="x-functions-key")] = None,
    subscription_key: Annotated[str | None, Header(alias="Ocp-Apim-Subscription-Key")] = None,
    bearer: Annotated[Bearer | None, Depends(_bearer)] = None,
) -> auth.Principal:
    # Either StopNCII header may carry the hub key (clients send both); the first hub key wins.
    offered = [functions_key, subscription_key, bearer.credentials if bearer else None]
    keys = [k.strip() for k in offered if k and k.strip().startswith(f"{auth.PREFIX}_")]
    if not keys:
        raise Unauthorized("Send the hub API key in 'x-functions-key' or 'Ocp-Apim-Subscription-Key'.")
    return hub.keys.verify(keys[0])


NcmecCaller = Annotated[auth.Principal, Depends(_ncmec_caller)]
StopnciiCaller = Annotated[auth.Principal, Depends(_stopncii_caller)]

ncmec_router = APIRouter(tags=["compat: NCMEC v2"], route_class=XmlErrorRoute)


@ncmec_router.get("/v2/status", summary="Who you are, as an NCMEC member")
def ncmec_status(hub: HubDep, caller: NcmecCaller, scope: Scope) -> Response:
    entries.readable(hub, caller, scope)
    return _xml(ncmec.status_document(caller.org_id, caller.org))


@ncmec_router.get("/v2/members", summary="You and the contributors of the lists you read")
def ncmec_members(hub: HubDep, caller: NcmecCaller, scope: Scope) -> Response:
    lists = entries.readable(hub, caller, scope)
    return _xml(ncmec.members_document(entries.members(hub, caller, lists)))


@ncmec_router.get("/v2/feedback/{kind}/reasons", summary="Negative feedback reasons for a fingerprint type")
def ncmec_reasons(kind: str, caller: NcmecCaller) -> Response:
    caller.require("member")
    return _xml(ncmec.reasons_document(ncmec.fingerprint_type(kind)))


@ncmec_router.get("/v2/entries", summary="Entries changed between two times, 1,000 a page")
def ncmec_entries(
    hub: HubDep,
    caller: NcmecCaller,
    scope: Scope,
    since: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    to: Annotated[str | None, Query(max_length=64)] = None,
    start: Annotated[int, Query(ge=1, le=2**62)] = 1,
    size: Annotated[int, Query(ge=1, le=ncmec.PAGE_SIZE)] = ncmec.PAGE_SIZE,
    max_id: Annotated[int | None, Query(alias="max", ge=0, le=2**62)] = None,
) -> Response:
    lists = entries.readable(hub, caller, scope)
    first = math.floor(ncmec.parse_time(since, "from", 0))
    last = math.floor(ncmec.parse_time(to, "to", time.time()))
    # Both ends are inclusive at NCMEC's one-second resolution.
    window = entries.Window(since=first, until=last + 1, start=start, max_id=max_id, size=size)
    page = entries.read_window(hub, caller, lists, window, action="ncmec.entries.read")
    link = None
    if page.next_start is not None:
        link = ncmec.next_link(ncmec.format_time(first), ncmec.format_time(last), page, size)
    return _xml(ncmec.entries_document(page, link))


@ncmec_router.put("/v2/entries/{member_id}/{entry_id}/{kind}/feedback", summary="Feedback on an entry")
async def ncmec_feedback(
    request: Request, member_id: str, entry_id: str, kind: str, hub: HubDep, caller: NcmecCaller
) -> Response:
    fp_type = ncmec.fingerprint_type(kind)
    # Entry ids are hub item ids, unique across members, so the member id (older clients send their
    # own) is not needed to find the entry.
    if not entry_id.isdigit() or not 1 <= int(entry_id) <= 2**62:
        raise NotFound(f"There is no entry {entry_id[:40]!r}.")
    body = await request.body()
    vote = ncmec.parse_feedback(body)
    note = f"NCMEC {fp_type} feedback (member {member_id[:20]})"
    result = await run_in_threadpool(
        feedback.give_feedback, hub, caller, int(entry_id), vote.verdict, vote.reason, note
    )
    return _xml(ncmec.feedback_result_document(result["item"], vote.verdict, result["status"]))


stopncii_router = APIRouter(tags=["compat: StopNCII v1"])


@stopncii_router.get("/FetchHashes", summary="Hash records changed since a time, a page at a time")
def stopncii_fetch(
    hub: HubDep,
    caller: StopnciiCaller,
    scope: Scope,
    start_ts: Annotated[int, Query(alias="startTimestamp", ge=-(2**40), le=2**40)] = 0,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=stopncii.MAX_PAGE)] = 800,
    token: Annotated[str | None, Query(alias="nextPageToken", max_length=100)] = None,
) -> Response:
    lists = entries.readable(hub, caller, scope)
    hub.refresh()  # cases for a hash come from the pool: bring it up to the committed head
    walk = stopncii.begin(start_ts, token)
    page = entries.read_window(hub, caller, lists, walk.window(page_size), action="stopncii.fetch")
    records = stopncii.records(hub, caller, lists, page)
    more = page.next_start is not None
    return json_response(
        {
            "count": len(records),
            "nextPageToken": stopncii.Walk(walk.start_ts, walk.until, page.next_start).token()
            if more
            else None,
            "nextSetTimestamp": walk.next_set,
            "hasMoreRecords": more,
            "hashRecords": records,
        }
    )


class HashFeedbacksIn(BaseModel):
    count: int | None = None
    hashFeedbacks: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


@stopncii_router.post("/SubmitFeedback", summary="CSP feedback on hashes, as hub feedback on their items")
def stopncii_feedback(body: HashFeedbacksIn, hub: HubDep, caller: StopnciiCaller, scope: Scope) -> Response:
    lists = entries.readable(hub, caller, scope)
    return json_response(stopncii.submit_feedback(hub, caller, lists, body.hashFeedbacks))


class HashRecordsIn(BaseModel):
    count: int | None = None
    hashRecords: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)


@stopncii_router.post("/SubmitHashes", summary="Hash records as items (contributors)")
def stopncii_hashes(body: HashRecordsIn, hub: HubDep, caller: StopnciiCaller, scope: Scope) -> Response:
    return json_response(stopncii.submit_hashes(hub, caller, scope, body.hashRecords))


def _list_param(list_name: Annotated[str, FastPath(max_length=100, description="one list")]) -> None:
    """Declares the per-list mounts' path parameter (read by `_scope`) so the OpenAPI shows it."""


def include(app: FastAPI) -> None:
    """Mount both protocols, over all readable lists and per list."""
    for router, (every, one) in ((ncmec_router, NCMEC_PREFIXES), (stopncii_router, STOPNCII_PREFIXES)):
        app.include_router(router, prefix=every)
        app.include_router(router, prefix=one, dependencies=[Depends(_list_param)])
