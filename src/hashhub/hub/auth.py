"""API keys: generated once, stored as a salted hash, looked up by the key id they carry.

A key reads `hh_<key id>_<secret>`: 12 hex characters of id and a 256-bit URL-safe secret. The secret
has full entropy, so one salted SHA-256 is enough to store it (slow password hashes exist for guessable
passwords). Verified keys are remembered for a few seconds so hot paths do not hash on every call.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hashhub import db
from hashhub.hub.errors import Forbidden, Unauthorized
from hashhub.hub.models import api_keys, list_grants, lists, organisations

ROLES = ("admin", "contributor", "member")
PREFIX = "hh"
LAST_USED_EVERY = 60.0  # seconds between last-used updates of one key


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the organisation behind a verified key and what the key allows."""

    org_id: int
    org: str
    roles: frozenset[str]
    key_id: str
    scopes: frozenset[str]

    def has(self, role: str) -> bool:
        return role in self.roles and role in self.scopes

    def require(self, role: str) -> None:
        if not self.has(role):
            held = ", ".join(sorted(self.roles & self.scopes)) or "none"
            raise Forbidden(f"This needs the {role!r} role; organisation {self.org!r} acts here as: {held}.")


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    api_key: str  # shown once, never stored


def parse_roles(roles: list[str] | tuple[str, ...] | set[str]) -> frozenset[str]:
    wanted = frozenset(r.strip().lower() for r in roles)
    unknown = sorted(wanted - set(ROLES))
    if unknown or not wanted:
        raise ValueError(
            f"roles must be one or more of {', '.join(ROLES)}; got {', '.join(unknown) or 'none'}"
        )
    return wanted


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


def issue(conn: Connection, org_id: int, scopes: frozenset[str], label: str = "") -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    conn.execute(
        sa.insert(api_keys).values(
            id=key_id,
            org_id=org_id,
            salt=salt,
            digest=_digest(salt, secret),
            scopes=",".join(sorted(scopes)),
            label=label,
            created_at=time.time(),
        )
    )
    return NewKey(key_id, f"{PREFIX}_{key_id}_{secret}")


def split_key(key: str) -> tuple[str, str]:
    prefix, _, rest = key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or len(key_id) != 12 or not secret:
        raise Unauthorized("The API key is malformed; keys look like hh_<id>_<secret>.")
    return key_id, secret


class KeyVerifier:
    """Checks bearer keys against the database, remembering good ones for `ttl` seconds."""

    def __init__(self, engine: Engine, ttl: float) -> None:
        self._engine = engine
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._last_used: dict[str, float] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def cached(self, key: str) -> Principal | None:
        """The principal of a key verified less than `ttl` seconds ago, else None. A dict lookup
        (atomic under the GIL, no lock, no database), so the event loop may call it."""
        hit = self._cache.get(key)
        if hit is None or hit[0] <= time.monotonic():
            return None
        self._touch(hit[1].key_id)
        return hit[1]

    def verify(self, key: str | None) -> Principal:
        if not key:
            raise Unauthorized("An API key is required: send 'Authorization: Bearer <key>'.")
        principal = self.cached(key)
        if principal is not None:
            return principal
        expires = time.monotonic() + self._ttl
        principal = self._load(key)
        if self._ttl > 0:
            with self._lock:
                self._cache[key] = (expires, principal)
        self._touch(principal.key_id)
        return principal

    def _load(self, key: str) -> Principal:
        key_id, secret = split_key(key)
        with db.read(self._engine) as conn:
            row = conn.execute(
                sa.select(api_keys, organisations.c.name, organisations.c.roles, organisations.c.status)
                .join(organisations, organisations.c.id == api_keys.c.org_id)
                .where(api_keys.c.id == key_id)
            ).one_or_none()
        if row is None or not hmac.compare_digest(row.digest, _digest(row.salt, secret)):
            raise Unauthorized("The API key is not valid.")
        if row.revoked_at is not None and row.revoked_at <= time.time():  # a rotated key may run on a while
            raise Unauthorized("The API key has been revoked; ask an admin for a new one.")
        if row.status != "active":
            raise Unauthorized(f"Organisation {row.name!r} is {row.status}; its keys do not work.")
        return Principal(
            org_id=row.org_id,
            org=row.name,
            roles=frozenset(row.roles.split(",")),
            key_id=key_id,
            scopes=frozenset(row.scopes.split(",")),
        )

    def _touch(self, key_id: str) -> None:
        """Record the key's last use, at most once a minute, in a thread of its own: the request
        never waits for that write."""
        now = time.time()
        if now - self._last_used.get(key_id, 0.0) < LAST_USED_EVERY:
            return
        with self._lock:
            if now - self._last_used.get(key_id, 0.0) < LAST_USED_EVERY:
                return
            self._last_used[key_id] = now
        threading.Thread(target=self._store_last_used, args=(key_id, now), daemon=True).start()

    def _store_last_used(self, key_id: str, at: float) -> None:
        try:
            with db.write(self._engine) as conn:
                conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=at))
        except Exception:  # a busy or closed database: the next use a minute later tries again
            with self._lock:
                self._last_used.pop(key_id, None)


def granted_lists(conn: Connection, org_id: int, *, write: bool = False) -> dict[int, str]:
    """Lists the organisation may read (or write): id -> name."""
    flag = list_grants.c.can_write if write else list_grants.c.can_read
    rows = conn.execute(
        sa.select(lists.c.id, lists.c.name)
        .join(list_grants, list_grants.c.list_id == lists.c.id)
        .where(list_grants.c.org_id == org_id, flag.is_(True))
    )
    return {r.id: r.name for r in rows}
