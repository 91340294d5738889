"""`hashhub hub import` commits its batches in groups (`hashhub.hub.grouped`): a failure inside a
group rolls back that group only, leaves the hub consistent (cursor head, change log, audit chain),
and running the same import again writes the rest, without a duplicate item or change.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.hub.conftest import item, open_hub, populate

from hashhub import db
from hashhub.hub import audit, grouped, heads, importer, ingest, orgs
from hashhub.hub.core import Hub


class Crash(Exception):
    """Stands for anything that stops an import between two batches of one group."""


def _write(path: Path, count: int) -> Path:
    path.write_bytes(b"".join(orjson.dumps(item(n)) + b"\n" for n in range(count)))
    return path


def _consistent(hub: Hub) -> list[tuple[int, str]]:
    """(cursor, external id) of every change, after checking the hub's books agree with them."""
    with db.read(hub.engine) as conn:
        changes = conn.exec_driver_sql(
            "SELECT c.cursor, i.external_id FROM changes c JOIN items i ON i.id = c.item_id ORDER BY c.cursor"
        ).all()
        head = heads.current(conn)
        item_count = conn.exec_driver_sql("SELECT count(*) FROM items").scalar_one()
    assert [c[0] for c in changes] == list(range(1, head + 1))  # no gap, nothing past the head
    assert item_count == len({c[1] for c in changes})  # every item has its change, and only one
    assert audit.verify(hub.engine).ok
    return [(c[0], c[1]) for c in changes]


def test_a_failure_inside_a_group_keeps_the_groups_before_it_and_a_rerun_completes_the_import(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(hub)
    monkeypatch.setattr(grouped, "GROUP_SECONDS", 3600)
    monkeypatch.setattr(grouped, "GROUP_ROWS", 8)  # two batches of 4 a group
    path = _write(tmp_path / "items.ndjson", 40)
    batches: list[int] = []

    def crash_in_the_third_group(_done: int) -> None:
        batches.append(1)
        if len(batches) == 5:  # the third group's first batch is written, not committed
            raise Crash

    with pytest.raises(Crash):
        importer.import_file(hub, path, "iwf", "verified", batch_size=4, progress=crash_in_the_third_group)
    assert [e for _, e in _consistent(hub)] == [f"ext-{n}" for n in range(16)]

    again = importer.import_file(hub, path, "iwf", "verified", batch_size=4)
    assert (again.rows, again.created, again.unchanged, again.updated) == (40, 24, 16, 0)
    assert [e for _, e in _consistent(hub)] == [f"ext-{n}" for n in range(40)]


def _processes_reading(path: Path, within: float) -> list[int]:
    """Processes whose command line names `path`, waiting up to `within` seconds for none."""
    deadline = time.monotonic() + within
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if str(path).encode() in (entry / "cmdline").read_bytes():
                        found.append(int(entry.name))
                except OSError:  # it exited meanwhile
                    pass
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_an_import_killed_inside_a_group_leaves_a_consistent_hub_and_a_rerun_completes_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The real thing: `hashhub hub import` killed (SIGKILL) once its first group is committed."""
    hub = open_hub(sqlite_url)
    try:
        populate(hub)
        total = 40_000
        path = _write(tmp_path / "items.ndjson", total)
        # Groups of two batches, so the import is many groups long and is killed inside one.
        command = [sys.executable, "-c", "from hashhub.hub import grouped; grouped.GROUP_ROWS = 2_000; "]
        command[-1] += "from hashhub.cli import main; main()"
        command += ["hub", "import", str(path), "--org", "iwf", "--list", "verified", "--db", sqlite_url]
        command += ["--batch-size", "1000"]
        run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while run.poll() is None and time.monotonic() < deadline:
            with db.read(hub.engine) as conn:
                if heads.current(conn) > 0:
                    break
            time.sleep(0.005)
        os.kill(run.pid, signal.SIGKILL)
        assert run.wait(60) == -signal.SIGKILL
        # Its parse process goes with it (it used to block for ever on a full pipe whose read end
        # it had inherited itself).
        assert _processes_reading(path, within=10) == []
        first = _consistent(hub)
        assert 0 < len(first) < total and len(first) % 1000 == 0  # whole batches, not all of them
        assert [e for _, e in first] == [f"ext-{n}" for n in range(len(first))]

        again = importer.import_file(hub, path, "iwf", "verified", batch_size=1000)
        assert (again.created, again.unchanged) == (total - len(first), len(first))
        assert [e for _, e in _consistent(hub)] == [f"ext-{n}" for n in range(total)]
    finally:
        hub.close()


def test_a_post_during_an_import_gets_in_between_two_groups_never_inside_one(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(hub)
    monkeypatch.setattr(grouped, "GROUP_SECONDS", 3600)
    monkeypatch.setattr(grouped, "GROUP_ROWS", 8)
    path = _write(tmp_path / "items.ndjson", 16)
    ncmec = orgs.acting_as(hub.engine, "ncmec")
    posted: list[dict[str, Any]] = []
    poster = threading.Thread(
        target=lambda: posted.append(ingest.submit(hub, ncmec, "verified", [item("p")]))
    )

    def post_while_the_first_group_is_open(_done: int) -> None:
        if not poster.is_alive() and not posted:
            poster.start()  # it waits for the write lock (SQLite) or the cursor's row (PostgreSQL)

    importer.import_file(
        hub, path, "iwf", "verified", batch_size=4, progress=post_while_the_first_group_is_open
    )
    poster.join(60)
    cursor = posted[0]["cursor"]
    assert cursor in (9, 17)  # after the first group's 8 items, or after all 16
    changes = _consistent(hub)
    assert changes[cursor - 1][1] == "ext-p"
    assert [e for _, e in changes if e != "ext-p"] == [f"ext-{n}" for n in range(16)]
