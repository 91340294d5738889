"""Which lists a caller may read, resolved once per request (and narrowed by an optional filter)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

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
