"""The smallest hub a process test needs: a contributor that writes and a member that reads one list.

Set up in-process (a CLI process per command costs seconds); the servers under test are real. The
hub benchmarks (benchmarks/_random_hub.py) start from the same set-up.
"""

from __future__ import annotations

from hashhub.hub import orgs
from hashhub.hub.core import Hub
from hashhub.hub.settings import HubSettings


def contributor_and_member(url: str) -> dict[str, str]:
    """Organisations `contrib` (contributor) and `plat` (member) and the list `verified` that the one
    writes and the other reads, in the hub database at `url`; returns their API keys by name."""
    hub = Hub(HubSettings(db=url))
    try:
        keys = {
            "contrib": orgs.create_org(hub.engine, "contrib", ["contributor"])["api_key"],
            "plat": orgs.create_org(hub.engine, "plat", ["member"])["api_key"],
        }
        orgs.create_list(hub.engine, "verified", read=["plat"], write=["contrib"])
    finally:
        hub.close()
    return keys
