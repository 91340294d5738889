"""Peer-protocol fixtures: a live hub on loopback holding a known list, read by the peers' own clients.

`listed` (one per module, SQLite) holds 2,300 benign made-up items from two contributors (images
with PDQ and MD5, every tenth a video with an MD5), three of them withdrawn, plus items in the
`restricted` list that `plat` may not read. `Listed.expected()` is the list as the hub's native
snapshot shows it to a member, the truth every client's view is compared with.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from hashhub.hub.core import Hub
from tests.hub.conftest import World, db_url, item, md5_of, open_hub, populate, serving  # noqa: F401 (db_url: a fixture)

ITEMS = 2300


def image_or_video(n: int) -> dict[str, Any]:
    """Every tenth item is a video with an MD5; the others images with PDQ and MD5."""
    if n % 10 == 0:
        row = item(n, md5=md5_of(f"video:{n}"))
        row["content_type"] = "video"
        return row
    return item(n, grade="A1" if n % 2 else "B2")


@dataclass
class Listed:
    world: World
    withdrawn: list[str]
    restricted: list[str]
    created: float

    @property
    def url(self) -> str:
        return self.world.url

    def key(self, org: str) -> str:
        return self.world.keys[org]

    def expected(self, org: str = "plat") -> dict[str, dict[str, Any]]:
        """The live items `org` reads, by id, from the native snapshot."""
        r = self.world.client(org).get("/api/v1/snapshot")
        assert r.status_code == 200, r.text
        lines = r.content.splitlines()[1:]
        return {d["id"]: d for d in map(orjson.loads, lines)}

    def org_id(self, org: str) -> int:
        from hashhub.hub import orgs

        with self.world.hub.engine.connect() as conn:
            return orgs.org_id(conn, org)

    def wait_until_older_than(self, seconds: float) -> None:
        """Clients that read up to 'now - N seconds' only see items once they are that old."""
        time.sleep(max(0.0, self.created + seconds - time.time()))


def build(hub: Hub, url: str, keys: dict[str, str]) -> Listed:
    world = World(hub, url, keys)
    half = ITEMS // 2
    ids = world.submit_ok("iwf", [image_or_video(n) for n in range(half)])
    ids += world.submit_ok("ncmec", [image_or_video(n) for n in range(half, ITEMS)])
    withdrawn = [ids[3], ids[20], ids[half + 7]]  # an image, a video, another contributor's image
    for item_id in withdrawn:
        owner = "iwf" if ids.index(item_id) < half else "ncmec"
        r = world.client(owner).post(f"/api/v1/items/{item_id}/withdraw", json={"reason": "test"})
        assert r.status_code == 200, r.text
    restricted = world.submit_ok("ncmec", [item(f"r{n}") for n in range(5)], "restricted")
    return Listed(world, withdrawn, restricted, time.time())


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listed]:
    path: Path = tmp_path_factory.mktemp("compat") / "hub.db"
    hub = open_hub(f"sqlite:///{path}", dispute_threshold=2)
    keys = populate(hub)
    try:
        with serving(hub) as url:
            listed = build(hub, url, keys)
            yield listed
            listed.world.close()
    finally:
        hub.close()


@pytest.fixture
def fresh(db_url: str) -> Iterator[World]:  # noqa: F811 (the fixture, imported above)
    """An empty hub (SQLite, or PostgreSQL under the `postgres` marker) with the standard cast."""
    hub = open_hub(db_url, dispute_threshold=2)
    try:
        with serving(hub) as url:
            world = World(hub, url, populate(hub))
            yield world
            world.close()
    finally:
        hub.close()
