"""Which lists a caller may read, resolved once per request (and narrowed by an optional filter)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy.engine import Connection, Engine

from hashhub import db
from hashhub.hub import auth
from hashhub.hub.errors import Forbidden


def readable_lists(
    conn: Connection, principal: auth.Principal, wanted: Sequence[str] | None = None
) -> dict[int, str]:
    """Lists `principal` (a member) may read, limited to `wanted` names when given."""
    principal.require("member")
    granted = auth.granted_lists(conn, principal.org_id)
    if not wanted:
        return granted
    by_name = {name: i for i, name in granted.items()}
    missing = sorted(set(wanted) - set(by_name))
    if missing:
        raise Forbidden(f"Organisation {principal.org!r} may not read list(s): {', '.join(missing)}.")
    return {by_name[n]: n for n in wanted}


class GrantCache:
    """The lists each organisation may read, remembered for `ttl` seconds (the key cache's time:
    a grant withdrawn from an organisation stops counting within it on a running server, like a
    revoked key). The hit path is a dict lookup, so a match request needs no query for its grants."""

    def __init__(self, engine: Engine, ttl: float) -> None:
        self._engine = engine
        self._ttl = ttl
        self._cache: dict[int, tuple[float, frozenset[int]]] = {}

    def cached(self, principal: auth.Principal) -> frozenset[int] | None:
        """The readable list ids if they are remembered and fresh, else None (never blocks)."""
        principal.require("member")
        hit = self._cache.get(principal.org_id)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def readable(self, principal: auth.Principal) -> frozenset[int]:
        hit = self.cached(principal)
        if hit is not None:
            return hit
        expires = time.monotonic() + self._ttl
        with db.read(self._engine) as conn:
            ids = frozenset(readable_lists(conn, principal))
        if self._ttl > 0:
            self._cache[principal.org_id] = (expires, ids)
        return ids
