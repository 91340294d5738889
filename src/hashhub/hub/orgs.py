"""Administration: organisations, keys, lists and their grants, grading schemes.

Used by the admin HTTP routes and by the CLI on the database directly; every change is audited with
the acting organisation (or `cli` for a local operator).
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hashhub import db, grading
from hashhub.hub import audit, auth
from hashhub.hub.errors import Conflict, Invalid, NotFound
from hashhub.hub.models import api_keys, list_grants, lists, organisations, schemes

LIST_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def _org_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200 or not name.isprintable():
        raise Invalid("An organisation name must be 1-200 printable characters.")
    return name


def _roles(roles: list[str] | tuple[str, ...]) -> frozenset[str]:
    try:
        return auth.parse_roles(roles)
    except ValueError as exc:
        raise Invalid(f"{exc}.") from None


def org_id(conn: Connection, name: str) -> int:
    found = conn.execute(sa.select(organisations.c.id).where(organisations.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"There is no organisation named {name!r}.")
    return int(found)


def list_id(conn: Connection, name: str) -> int:
    found = conn.execute(sa.select(lists.c.id).where(lists.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"There is no list named {name!r}.")
    return int(found)


def create_org(
    engine: Engine, name: str, roles: list[str] | tuple[str, ...], kind: str = "", actor: str = "cli"
) -> dict[str, Any]:
    """A new organisation and its first key: `{"org": NAME, "api_key": "hh_...", ...}` (shown once)."""
    name, wanted = _org_name(name), _roles(roles)
    with db.write(engine) as conn:
        if conn.execute(sa.select(organisations.c.id).where(organisations.c.name == name)).first():
            raise Conflict(f"An organisation named {name!r} already exists.")
        new_id = conn.execute(
            sa.insert(organisations)
            .values(name=name, kind=kind[:50], roles=",".join(sorted(wanted)), created_at=time.time())
            .returning(organisations.c.id)
        ).scalar_one()
        key = auth.issue(conn, new_id, wanted, label="initial")
        audit.record(conn, actor, "org.create", name, {"roles": sorted(wanted), "key": key.key_id})
    return {"org": name, "roles": sorted(wanted), "kind": kind, "api_key": key.api_key, "key_id": key.key_id}


def list_orgs(engine: Engine) -> list[dict[str, Any]]:
    with db.read(engine) as conn:
        rows = conn.execute(sa.select(organisations).order_by(organisations.c.name)).all()
    return [{"name": r.name, "kind": r.kind, "roles": r.roles.split(","), "status": r.status} for r in rows]


def create_key(
    engine: Engine, org: str, scopes: list[str] | None = None, label: str = "", actor: str = "cli"
) -> dict[str, Any]:
    """Another key for `org`, limited to `scopes` (a subset of its roles; default: all of them)."""
    with db.write(engine) as conn:
        oid = org_id(conn, org)
        roles = frozenset(
            conn.execute(sa.select(organisations.c.roles).where(organisations.c.id == oid))
            .scalar_one()
            .split(",")
        )
        wanted = _roles(scopes) if scopes else roles
        if not wanted <= roles:
            raise Invalid(f"Scopes {', '.join(sorted(wanted - roles))} are not roles of {org!r}.")
        key = auth.issue(conn, oid, wanted, label=label[:200])
        audit.record(conn, actor, "key.create", org, {"key": key.key_id, "scopes": sorted(wanted)})
    return {"org": org, "key_id": key.key_id, "api_key": key.api_key, "scopes": sorted(wanted)}


def revoke_key(engine: Engine, key_id: str, actor: str = "cli") -> dict[str, Any]:
    if key_id.startswith(f"{auth.PREFIX}_"):
        key_id = auth.split_key(key_id)[0]
    with db.write(engine) as conn:
        row = conn.execute(sa.select(api_keys.c.revoked_at).where(api_keys.c.id == key_id)).one_or_none()
        if row is None:
            raise NotFound(f"There is no key with id {key_id!r}.")
        now = time.time()
        if row.revoked_at is None or row.revoked_at > now:  # also cuts short a rotation's grace period
            conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now))
            audit.record(conn, actor, "key.revoke", key_id)
    return {"key_id": key_id, "revoked": True}


def rotate_key(engine: Engine, key_id: str, grace_seconds: float = 0.0, actor: str = "cli") -> dict[str, Any]:
    """A new key with the old one's organisation, scopes and label; the old one stops working after
    `grace_seconds` (0: at once), so clients can switch over without an outage."""
    if grace_seconds < 0:
        raise Invalid("The grace period cannot be negative.")
    if key_id.startswith(f"{auth.PREFIX}_"):
        key_id = auth.split_key(key_id)[0]
    with db.write(engine) as conn:
        old = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).one_or_none()
        now = time.time()
        if old is None:
            raise NotFound(f"There is no key with id {key_id!r}.")
        if old.revoked_at is not None and old.revoked_at <= now:
            raise Invalid(f"Key {key_id!r} is already revoked; create a new key instead.")
        scopes = frozenset(old.scopes.split(","))
        new = auth.issue(conn, old.org_id, scopes, label=old.label)
        ends = now + grace_seconds
        conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=ends))
        details = {"old": key_id, "new": new.key_id, "grace_seconds": grace_seconds}
        audit.record(conn, actor, "key.rotate", key_id, details)
        org_name = sa.select(organisations.c.name).where(organisations.c.id == old.org_id)
        org = conn.execute(org_name).scalar_one()
    return {
        "org": org,
        "key_id": new.key_id,
        "api_key": new.api_key,
        "scopes": sorted(scopes),
        "replaces": key_id,
        "old_key_stops_at": ends,
    }


def create_list(
    engine: Engine,
    name: str,
    read: list[str] | tuple[str, ...] = (),
    write: list[str] | tuple[str, ...] = (),
    description: str = "",
    actor: str = "cli",
) -> dict[str, Any]:
    if not isinstance(name, str) or not LIST_NAME.match(name):
        raise Invalid("A list name is 1-100 characters: lowercase letters, digits, '.', '_' or '-'.")
    with db.write(engine) as conn:
        if conn.execute(sa.select(lists.c.id).where(lists.c.name == name)).first():
            raise Conflict(f"A list named {name!r} already exists.")
        new_id = conn.execute(
            sa.insert(lists)
            .values(name=name, description=description, created_at=time.time())
            .returning(lists.c.id)
        ).scalar_one()
        audit.record(conn, actor, "list.create", name, {"read": sorted(read), "write": sorted(write)})
        for org in sorted(set(read) | set(write)):
            _grant(conn, new_id, org_id(conn, org), org in read, org in write)
    return describe_list(engine, name)


def grant(engine: Engine, name: str, org: str, read: bool, write: bool, actor: str = "cli") -> dict[str, Any]:
    """Set `org`'s access to list `name` (read and write flags as given; both false removes access)."""
    with db.write(engine) as conn:
        lid, oid = list_id(conn, name), org_id(conn, org)
        _grant(conn, lid, oid, read, write)
        audit.record(conn, actor, "list.grant", name, {"org": org, "read": read, "write": write})
    return describe_list(engine, name)


def _grant(conn: Connection, lid: int, oid: int, read: bool, write: bool) -> None:
    conn.execute(sa.delete(list_grants).where(list_grants.c.list_id == lid, list_grants.c.org_id == oid))
    if read or write:
        conn.execute(sa.insert(list_grants).values(list_id=lid, org_id=oid, can_read=read, can_write=write))


def describe_list(engine: Engine, name: str) -> dict[str, Any]:
    with db.read(engine) as conn:
        lid = list_id(conn, name)
        rows = conn.execute(
            sa.select(organisations.c.name, list_grants.c.can_read, list_grants.c.can_write)
            .join(organisations, organisations.c.id == list_grants.c.org_id)
            .where(list_grants.c.list_id == lid)
            .order_by(organisations.c.name)
        ).all()
    return {
        "name": name,
        "read": [r.name for r in rows if r.can_read],
        "write": [r.name for r in rows if r.can_write],
    }


def all_lists(engine: Engine) -> list[dict[str, Any]]:
    with db.read(engine) as conn:
        names = conn.execute(sa.select(lists.c.name).order_by(lists.c.name)).scalars().all()
    return [describe_list(engine, n) for n in names]


def seed_schemes(engine: Engine) -> None:
    """Add built-in grading schemes the table lacks (admin-defined ones are left alone)."""
    with db.write(engine) as conn:
        present = set(conn.execute(sa.select(schemes.c.name)).scalars())
        missing = [s for n, s in grading.builtin_schemes().items() if n not in present]
        for scheme in missing:
            conn.execute(
                sa.insert(schemes).values(
                    name=scheme.name,
                    body=orjson.dumps(scheme.to_dict()).decode(),
                    builtin=True,
                    created_at=time.time(),
                )
            )


def load_schemes(conn: Connection) -> dict[str, grading.Scheme]:
    rows = conn.execute(sa.select(schemes.c.name, schemes.c.body)).all()
    return {r.name: grading.Scheme.from_dict(r.name, orjson.loads(r.body)) for r in rows}


def add_scheme(engine: Engine, name: str, body: dict[str, Any], actor: str = "cli") -> dict[str, Any]:
    try:
        scheme = grading.Scheme.from_dict(name, body)
    except grading.GradingError as exc:
        raise Invalid(f"{exc}.") from None
    with db.write(engine) as conn:
        if conn.execute(sa.select(schemes.c.name).where(schemes.c.name == scheme.name)).first():
            raise Conflict(f"A grading scheme named {scheme.name!r} already exists.")
        conn.execute(
            sa.insert(schemes).values(
                name=scheme.name,
                body=orjson.dumps(scheme.to_dict()).decode(),
                builtin=False,
                created_at=time.time(),
            )
        )
        audit.record(conn, actor, "scheme.create", scheme.name, {"values": list(scheme.values)})
    return {"name": scheme.name, **scheme.to_dict()}


def list_schemes(engine: Engine) -> dict[str, Any]:
    with db.read(engine) as conn:
        return {name: s.to_dict() for name, s in sorted(load_schemes(conn).items())}


def acting_as(engine: Engine, org: str) -> auth.Principal:
    """A local operator (the CLI, on the database itself) acting with all of `org`'s roles."""
    with db.read(engine) as conn:
        row = conn.execute(sa.select(organisations).where(organisations.c.name == org)).one_or_none()
    if row is None:
        raise NotFound(f"There is no organisation named {org!r}.")
    roles = frozenset(row.roles.split(","))
    return auth.Principal(org_id=row.id, org=row.name, roles=roles, key_id="cli", scopes=roles)


def writable_lists(engine: Engine, principal: auth.Principal) -> dict[int, str]:
    with db.read(engine) as conn:
        return auth.granted_lists(conn, principal.org_id, write=True)
