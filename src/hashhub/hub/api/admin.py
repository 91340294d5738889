"""Administration (admins only): organisations, keys, lists and grants, grading schemes, audit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from hashhub.hub import audit, orgs
from hashhub.hub.api.deps import Caller, HubDep, get_principal, json_response
from hashhub.hub.auth import Principal
from hashhub.hub.schemas import GrantIn, KeyIn, ListIn, OrgIn, SchemeIn


def _admin(caller: Caller) -> Principal:
    caller.require("admin")
    return caller


Admin = Annotated[Principal, Depends(_admin)]
router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/me", summary="The calling organisation and what its key allows")
def me(caller: Annotated[Principal, Depends(get_principal)]) -> Response:
    return json_response(
        {
            "org": caller.org,
            "roles": sorted(caller.roles),
            "scopes": sorted(caller.scopes),
            "key_id": caller.key_id,
        }
    )


@router.get("/orgs")
def list_orgs(hub: HubDep, admin: Admin) -> Response:
    return json_response({"orgs": orgs.list_orgs(hub.engine)})


@router.post("/orgs", status_code=201, summary="Create an organisation; its first key is shown once")
def create_org(body: OrgIn, hub: HubDep, admin: Admin) -> Response:
    return json_response(orgs.create_org(hub.engine, body.name, body.roles, body.kind, actor=admin.org), 201)


@router.post("/orgs/{name}/keys", status_code=201, summary="Another key for an organisation (shown once)")
def create_key(name: str, body: KeyIn, hub: HubDep, admin: Admin) -> Response:
    return json_response(orgs.create_key(hub.engine, name, body.scopes, body.label, actor=admin.org), 201)


@router.post("/keys/{key_id}/revoke")
def revoke_key(key_id: str, hub: HubDep, admin: Admin) -> Response:
    result = orgs.revoke_key(hub.engine, key_id, actor=admin.org)
    hub.keys.forget()
    return json_response(result)


@router.get("/lists")
def list_lists(hub: HubDep, admin: Admin) -> Response:
    return json_response({"lists": orgs.all_lists(hub.engine)})


@router.post("/lists", status_code=201)
def create_list(body: ListIn, hub: HubDep, admin: Admin) -> Response:
    created = orgs.create_list(
        hub.engine, body.name, body.read, body.write, body.description, actor=admin.org
    )
    return json_response(created, 201)


@router.post("/lists/{name}/grants", summary="Set an organisation's read/write access to a list")
def grant(name: str, body: GrantIn, hub: HubDep, admin: Admin) -> Response:
    return json_response(orgs.grant(hub.engine, name, body.org, body.read, body.write, actor=admin.org))


@router.get("/schemes", summary="Grading schemes (any key)")
def list_schemes(hub: HubDep, caller: Caller) -> Response:
    return json_response({"schemes": orgs.list_schemes(hub.engine)})


@router.post("/schemes", status_code=201, summary="Add a grading scheme")
def add_scheme(body: SchemeIn, hub: HubDep, admin: Admin) -> Response:
    scheme = orgs.add_scheme(
        hub.engine, body.name, {"description": body.description, "values": body.values}, actor=admin.org
    )
    return json_response(scheme, 201)


@router.get("/audit/verify", summary="Recompute the audit chain")
def verify_audit(hub: HubDep, admin: Admin) -> Response:
    result = audit.verify(hub.engine)
    return json_response({"ok": result.ok, "records": result.records, "problems": result.problems})
