"""Saved pool files (issue 12): a hub that starts from the saved pool plus the changes after it
answers exactly like one built from the database; damaged, unfinished or foreign files are ignored."""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.agent.procs import free_port, server
from tests.hub.conftest import flip_bits, item, md5_of, open_hub, pdq_of, populate

from hashhub.hub import feedback, ingest, orgs
from hashhub.hub.core import Hub
from hashhub.hub.poolfile import current_snapshot, pool_dir, save_pool
from hashhub.hub.settings import HubSettings
from hashhub.signals import VpdqSignal


def _video(n: int, frames: int = 4) -> str:
    """A made-up vPDQ value (canonical text) of `frames` distinct frames."""
    return VpdqSignal.parse(
        [
            {"frame": i, "quality": 100, "pdq": pdq_of(f"video-{n}-{i}"), "timestamp": float(i)}
            for i in range(frames)
        ]
    )


def _submit(hub: Hub, org: str, rows: list[dict[str, Any]], list_name: str = "verified") -> list[int]:
    done = ingest.submit(hub, orgs.acting_as(hub.engine, org), list_name, rows)
    return [int(i["id"]) for i in done["items"]]


def _first_items(hub: Hub, keys: dict[str, str] | None = None) -> dict[str, int]:
    """A varied pool: clusters by a shared MD5 and by near PDQs, two lists, three contributors,
    two videos (the organisations' keys go into `keys` when given)."""
    made = populate(hub)
    if keys is not None:
        keys.update(made)
    ids = {}
    shared = md5_of("shared")
    (ids["a"], ids["b"], ids["c"]) = _submit(
        hub, "iwf", [item(1, md5=shared, pdq=pdq_of(1)), item(2), item(3, pdq=flip_bits(pdq_of(2), 5))]
    )
    (ids["d"], ids["e"]) = _submit(hub, "ncmec", [item(4, md5=shared), item(5)], "restricted")
    (ids["f"],) = _submit(hub, "both", [item(6, reviewers=0)])
    (ids["v1"], ids["v2"]) = _submit(hub, "iwf", [item("v1", vpdq=_video(1)), item("v2", vpdq=_video(2))])
    return ids


def _later_changes(hub: Hub, ids: dict[str, int]) -> None:
    """Changes after the save: new items (one joining a saved cluster), a withdrawal of a saved
    item, a dispute, and a saved item's fingerprints replaced."""
    (ids["g"],) = _submit(hub, "ncmec", [item(7, pdq=flip_bits(pdq_of(5), 3))], "restricted")
    (ids["h"],) = _submit(hub, "iwf", [item(8, md5=md5_of("shared"))])
    feedback.withdraw(hub, orgs.acting_as(hub.engine, "iwf"), ids["b"], "false positive")
    for member in ("plat", "plat2"):
        feedback.give_feedback(hub, orgs.acting_as(hub.engine, member), ids["f"], "negative", "not_csam")
    _submit(hub, "iwf", [{**item(1), "external_id": "ext-1", "fingerprints": {"md5": md5_of("moved")}}])
    feedback.withdraw(hub, orgs.acting_as(hub.engine, "iwf"), ids["v1"], "false positive")
    (ids["v3"],) = _submit(hub, "ncmec", [item("v3", vpdq=_video(3, frames=6))])


def _queries() -> dict[str, list[str]]:
    md5s = [md5_of(n) for n in range(1, 9)] + [md5_of("shared"), md5_of("moved")]
    pdqs = [pdq_of(n) for n in range(1, 9)] + [flip_bits(pdq_of(n), 7) for n in range(1, 9)]
    return {"md5": md5s, "pdq": pdqs, "vpdq": [_video(n) for n in (1, 2, 3)] + [_video(3, frames=6)]}


def _answers(hub: Hub) -> dict[str, Any]:
    """Everything a match or the dashboard can see: hits per query (live items only), each item's
    status, its cluster as a set of live members, and the stats."""
    hub.refresh()
    pool = hub.pool
    hits = {}
    for signal, values in _queries().items():
        radius = {"pdq": hub.settings.match_pdq_radius, "vpdq": 0.2}.get(signal, 0)
        for value, (ids, dists) in zip(values, pool.near(signal, values, radius), strict=True):
            keep = pool.readable_live(ids, None)
            hits[f"{signal}:{value}"] = sorted(zip(ids[keep].tolist(), dists[keep].tolist(), strict=True))
    items = {}
    for i in range(1, pool.cols.size):
        status = pool.status(i)
        if status is None:
            continue
        facts: dict[str, Any] = {"status": status}
        if status != "withdrawn":
            described = pool.describe(i, None)
            shown = ("contributors", "verifications", "cluster_size", "classification")
            facts |= {k: described[k] for k in shown}
            facts["cluster"] = sorted(m for m in pool.cluster(i) if pool.status(m) != "withdrawn")
        items[i] = facts
    return {"hits": hits, "items": items, "stats": pool.stats()}


def test_restart_from_saved_files_plus_later_changes_equals_a_cold_build(db_url: str, tmp_path: Path) -> None:
    # SQLite keeps its files beside the database by default; PostgreSQL needs a directory.
    files = {} if db_url.startswith("sqlite") else {"pool_dir": str(tmp_path / "pool")}
    first = open_hub(db_url, **files)
    try:
        ids = _first_items(first)
        snap = save_pool(first)
        assert snap is not None and current_snapshot(first.files.directory) == snap
        saved_cursor = first.pool.cursor
        _later_changes(first, ids)
    finally:
        first.close()

    restarted = open_hub(db_url, **files)
    cold = open_hub(db_url, pool_dir="off")
    try:
        got = _answers(restarted)
        assert restarted.files.loaded_cursor == saved_cursor  # it really started from the files
        assert cold.files.loaded_cursor is None
        assert got == _answers(cold)
        # The withdrawal after the save holds: item b matches nothing, and c is alone again.
        assert all(ids["b"] not in [i for i, _ in found] for found in got["hits"].values())
        assert got["items"][ids["b"]]["status"] == "withdrawn"
        assert got["items"][ids["f"]]["status"] == "disputed"
        assert got["items"][ids["c"]]["cluster"] == [ids["c"]]
        assert got["items"][ids["h"]]["cluster"] == sorted([ids["d"], ids["h"]])  # a moved off "shared"
        assert got["items"][ids["g"]]["cluster"] == sorted([ids["e"], ids["g"]])
        assert got["hits"][f"vpdq:{_video(1)}"] == []  # withdrawn after the save
        assert [i for i, _ in got["hits"][f"vpdq:{_video(2)}"]] == [ids["v2"]]
        assert [i for i, _ in got["hits"][f"vpdq:{_video(3, frames=6)}"]] == [ids["v3"]]
    finally:
        restarted.close()
        cold.close()


def test_a_restarted_hub_keeps_following_changes(sqlite_url: str) -> None:
    first = open_hub(sqlite_url)
    try:
        ids = _first_items(first)
        save_pool(first)
    finally:
        first.close()
    hub = open_hub(sqlite_url)
    try:
        hub.refresh()
        assert hub.files.loaded_cursor is not None
        _later_changes(hub, ids)
        cold = open_hub(sqlite_url, pool_dir="off")
        try:
            assert _answers(hub) == _answers(cold)
        finally:
            cold.close()
    finally:
        hub.close()


def _saved(url: str) -> tuple[Path, dict[str, int]]:
    hub = open_hub(url)
    try:
        ids = _first_items(hub)
        snap = save_pool(hub)
        assert snap is not None
        return snap, ids
    finally:
        hub.close()


def _damage_index(snap: Path) -> None:
    manifest = json.loads((snap / "manifest.json").read_text())
    target = snap / manifest["indexes"]["md5"]
    data = bytearray(target.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte in the values
    target.write_bytes(bytes(data))


def _drop_manifest(snap: Path) -> None:
    (snap / "manifest.json").unlink()


def _truncate_columns(snap: Path) -> None:
    target = snap / "columns.hhix"
    target.write_bytes(target.read_bytes()[:4096])


def _other_schema(snap: Path) -> None:
    manifest = json.loads((snap / "manifest.json").read_text())
    (snap / "manifest.json").write_text(json.dumps({**manifest, "schema": "0000_elsewhere"}))


def _other_format(snap: Path) -> None:  # e.g. written by an older or newer hashhub
    manifest = json.loads((snap / "manifest.json").read_text())
    (snap / "manifest.json").write_text(json.dumps({**manifest, "format": 0}))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_damage_index, "damaged"),
        (_other_format, "format 0"),
        (_drop_manifest, "no manifest"),
        (_truncate_columns, "truncated"),
        (_other_schema, "schema revision"),
    ],
)
def test_damaged_unfinished_or_foreign_files_are_ignored(
    sqlite_url: str, caplog: pytest.LogCaptureFixture, damage: Any, reason: str
) -> None:
    snap, ids = _saved(sqlite_url)
    damage(snap)
    hub = open_hub(sqlite_url)
    cold = open_hub(sqlite_url, pool_dir="off")
    try:
        with caplog.at_level(logging.WARNING, logger="hashhub.hub.poolfile"):
            got = _answers(hub)
        assert hub.files.loaded_cursor is None
        assert any("ignored" in r.message and reason in r.message for r in caplog.records), caplog.text
        assert got == _answers(cold)
        ((found, _),) = hub.pool.near("md5", [md5_of("shared")], 0)
        assert sorted(found.tolist()) == sorted([ids["a"], ids["d"]])
    finally:
        hub.close()
        cold.close()


def test_files_of_another_database_are_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    snap, _ = _saved(f"sqlite:///{tmp_path / 'one.db'}")
    other = open_hub(f"sqlite:///{tmp_path / 'two.db'}", pool_dir=str(snap.parent))
    try:
        populate(other)
        _submit(other, "iwf", [item(n) for n in range(10, 20)])  # enough changes to pass the cursor
        with caplog.at_level(logging.WARNING, logger="hashhub.hub.poolfile"):
            other.refresh()
        assert other.files.loaded_cursor is None
        assert any("another database" in r.message for r in caplog.records), caplog.text
        ((found, _),) = other.pool.near("md5", [md5_of(1)], 0)
        assert len(found) == 0  # nothing of the first database leaked in
    finally:
        other.close()


def test_enough_changes_save_a_new_snapshot_in_the_background_and_a_peer_switches_to_it(
    sqlite_url: str,
) -> None:
    saver = open_hub(sqlite_url, pool_save_changes=3, pool_save_min_seconds=0)
    peer = open_hub(sqlite_url, pool_save_changes=3, pool_save_min_seconds=0)
    saver.files.check_interval = peer.files.check_interval = 0.0
    try:
        ids = _first_items(saver)
        saver.refresh()
        saver.files.wait()
        snap = current_snapshot(saver.files.directory)
        assert snap is not None  # the first items were already past the threshold
        peer.refresh()
        assert peer.files.loaded_cursor is not None
        _later_changes(saver, ids)
        saver.refresh()
        saver.files.wait()
        newer = current_snapshot(saver.files.directory)
        assert newer is not None and newer != snap
        peer.refresh()
        peer.files.wait()
        assert peer.files.loaded_cursor == int(newer.name.split("-")[1])
        cold = open_hub(sqlite_url, pool_dir="off")
        try:
            assert _answers(peer) == _answers(cold) == _answers(saver)
        finally:
            cold.close()
    finally:
        saver.close()
        peer.close()


def test_two_real_hub_processes_sharing_one_pool_directory_answer_identically(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    setup = open_hub(url)
    try:
        keys: dict[str, str] = {}
        ids = _first_items(setup, keys)
        assert save_pool(setup) is not None
    finally:
        setup.close()
    queries = [{"md5": v} for v in _queries()["md5"]] + [{"pdq": v} for v in _queries()["pdq"]]
    with ExitStack() as stack:
        clients = []
        for name in "ab":
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            log = tmp_path / f"{name}.log"
            stack.enter_context(
                server("hub", "serve", "--db", url, "--port", str(port), health=f"{base}/healthz", log=log)
            )
            client = stack.enter_context(
                httpx.Client(base_url=base, headers={"Authorization": f"Bearer {keys['plat']}"}, timeout=30)
            )
            clients.append((client, log))

        def answers() -> list[Any]:
            got = []
            for client, _ in clients:
                r = client.post("/api/v1/match", json={"fingerprints": queries})
                assert r.status_code == 200, r.text
                got.append(r.json()["results"])
            return got

        a, b = answers()
        assert a == b and any(r["matches"] for r in a)
        for _, log in clients:
            assert "pool loaded from" in log.read_text()  # both started from the shared files
        writer = open_hub(url, pool_dir="off")
        try:
            _later_changes(writer, ids)
        finally:
            writer.close()
        a, b = answers()
        assert a == b
        assert all(m["item"] != str(ids["b"]) for r in a for m in r["matches"])


def test_saves_wait_for_the_minimum_interval(sqlite_url: str) -> None:
    hub = open_hub(sqlite_url, pool_save_changes=3, pool_save_min_seconds=3600)
    hub.files.check_interval = 0.0
    try:
        ids = _first_items(hub)
        hub.refresh()
        hub.files.wait()
        first = current_snapshot(hub.files.directory)
        assert first is not None  # nothing saved or loaded before: due at once
        _later_changes(hub, ids)
        hub.refresh()
        hub.files.wait()
        assert current_snapshot(hub.files.directory) == first  # due by count, not yet by time
    finally:
        hub.close()


def test_where_pool_files_live() -> None:
    assert pool_dir(HubSettings(db="sqlite:////srv/hub.db")) == Path("/srv/hub.db.pool")
    assert pool_dir(HubSettings(db="/srv/hub.db")) == Path("/srv/hub.db.pool")
    assert pool_dir(HubSettings(db="sqlite://")) is None  # in memory: nothing to sit beside
    assert pool_dir(HubSettings(db="postgresql+psycopg://hub@db/hub")) is None
    assert pool_dir(
        HubSettings(db="postgresql+psycopg://hub@db/hub", pool_dir="/var/lib/hashhub/pool")
    ) == Path("/var/lib/hashhub/pool")
    assert pool_dir(HubSettings(db="sqlite:////srv/hub.db", pool_dir="off")) is None


def test_an_unusable_pool_directory_is_logged_and_the_hub_serves_from_memory(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    hub = open_hub(sqlite_url, pool_dir=str(blocker / "pool"), pool_save_min_items=0)
    try:
        ids = _first_items(hub)
        with caplog.at_level(logging.WARNING, logger="hashhub.hub.poolfile"):
            hub.refresh()
        assert any("unusable" in r.message for r in caplog.records), caplog.text
        ((found, _),) = hub.pool.near("md5", [md5_of("shared")], 0)
        assert sorted(found.tolist()) == sorted([ids["a"], ids["d"]])
    finally:
        hub.close()


def test_a_large_cold_build_runs_in_a_process_of_its_own_and_the_server_maps_its_files(
    db_url: str, tmp_path: Path
) -> None:
    # The threshold lowered to every pool: the build (and the memory it leaves fragmented) happens
    # in `python -m hashhub.hub.poolbuild`; this process only maps the files it saved.
    files = {} if db_url.startswith("sqlite") else {"pool_dir": str(tmp_path / "pool")}
    first = open_hub(db_url, pool_dir="off")
    try:
        _first_items(first)
        head = first.refresh()
    finally:
        first.close()
    built = open_hub(db_url, pool_save_min_items=0, pool_build_process_items=0, **files)
    cold = open_hub(db_url, pool_dir="off")
    try:
        got = _answers(built)
        assert built.files.loaded_cursor == head  # loaded from files another process wrote
        assert got == _answers(cold)
    finally:
        built.close()
        cold.close()


def test_a_failed_build_process_is_logged_and_the_server_builds_the_pool_itself(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    first = open_hub(sqlite_url, pool_dir="off")
    try:
        _first_items(first)
    finally:
        first.close()
    monkeypatch.setattr("sys.executable", "/bin/false")  # the child exits 1 at once
    hub = open_hub(sqlite_url, pool_save_min_items=0, pool_build_process_items=0)
    cold = open_hub(sqlite_url, pool_dir="off")
    try:
        with caplog.at_level(logging.WARNING, logger="hashhub.hub.poolbuild"):
            got = _answers(hub)
        assert "pool build process exited 1" in caplog.text
        assert hub.files.loaded_cursor is not None  # built here, saved, then mapped
        assert got == _answers(cold)
    finally:
        hub.close()
        cold.close()
