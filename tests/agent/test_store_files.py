"""Start-up from saved files: an agent restarted on the same store answers exactly as one that read
the whole store, replays only what changed after the files, and ignores files that do not belong to
its store (another store's, damaged, or disagreeing with it). Scans never query the database."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from hashhub.agent import metatable, statefiles
from hashhub.agent.metatable import MetaRow, MetaTable
from hashhub.agent.runtime import AgentRuntime
from hashhub.agent.settings import make_settings

from .conftest import HUB_URL, KEY, FakeHub, make_item, pdq_hex


@contextmanager
def agent(db: Path, hub: FakeHub, **kw) -> Iterator[AgentRuntime]:
    rt = AgentRuntime(
        make_settings(db=str(db), sync_interval=0), make_client=lambda h: hub.client(h.url), **kw
    )
    rt.store.follow(HUB_URL, KEY)
    try:
        yield rt
    finally:
        rt.close()


def answers(rt: AgentRuntime, seeds: range) -> list[list[dict]]:
    """What a scan reports for each seed's PDQ and MD5 (everything a user sees of a match)."""
    queries = [{"pdq": pdq_hex(n), "md5": f"{n:032x}"} for n in seeds]
    return [[m.as_dict() for m in found] for found in rt.matcher.match_many(queries)]


def test_restart_loads_the_saved_files_and_answers_like_a_full_rebuild(tmp_path, fake_hub: FakeHub) -> None:
    for n in range(40):
        fake_hub.upsert(make_item(n, classification={"scheme": "industry", "value": "A1" if n % 2 else "B2"}))
    fake_hub.upsert(make_item(40, fingerprints={"md5": f"{40:032x}"}))  # an item without PDQ
    db = tmp_path / "agent.db"
    with agent(db, fake_hub) as first:
        first.sync_once()
        assert first.load_report["source"] == "store"
    assert statefiles.read_manifest(tmp_path / "agent.db.state") is not None
    with agent(db, fake_hub) as restarted, agent(db, fake_hub, state_dir=None) as rebuilt:
        restarted.load()
        rebuilt.load()
        assert restarted.load_report["source"] == "files" and restarted.load_report["replayed"] == 0
        assert rebuilt.load_report["source"] == "store"
        assert len(restarted.matcher) == 41 and restarted.matcher.pdq_count == 40
        got = answers(restarted, range(45))
        assert got == answers(rebuilt, range(45))
        assert [m["item"] for m in got[3]] == ["item-3"] and got[3][0]["classification"]["value"] == "A1"
        assert [m["item"] for m in got[40]] == ["item-40"] and got[44] == []


def test_changes_after_the_files_are_replayed_from_the_store(tmp_path, fake_hub: FakeHub) -> None:
    for n in range(20):
        fake_hub.upsert(make_item(n))
    db = tmp_path / "agent.db"
    with agent(db, fake_hub) as first:
        first.sync_once()  # the first load saves files
        saved = statefiles.read_manifest(tmp_path / "agent.db.state")
        fake_hub.delete("item-3")
        fake_hub.upsert(make_item(5, classification={"scheme": "industry", "value": "B1"}))
        fake_hub.upsert(make_item(30))
        first.sync_once()  # 3 changes: too few to save again
    assert statefiles.read_manifest(tmp_path / "agent.db.state") == saved
    with agent(db, fake_hub) as restarted:
        restarted.load()
        assert restarted.load_report == {
            **restarted.load_report,
            "source": "files",
            "replayed": 3,
            "items": 20,
        }
        got = answers(restarted, range(31))
        assert got[3] == [] and [m["item"] for m in got[30]] == ["item-30"]
        assert got[5][0]["classification"] == {"scheme": "industry", "value": "B1"}


def _synced(tmp_path: Path, hub: FakeHub, count: int) -> tuple[Path, Path]:
    """A store synced with `count` items by an agent that saved its files: (database, state folder)."""
    for n in range(count):
        hub.upsert(make_item(n))
    db = tmp_path / "agent.db"
    with agent(db, hub) as first:
        first.sync_once()
    return db, tmp_path / "agent.db.state"


@pytest.mark.parametrize("damage", ["other-store", "bit-flip", "store-disagrees", "missing-file"])
def test_unusable_files_are_ignored_and_the_index_rebuilt(tmp_path, fake_hub: FakeHub, damage: str) -> None:
    db, state = _synced(tmp_path, fake_hub, 10)
    generation = state / statefiles.read_manifest(state)["generation"]
    if damage == "other-store":  # the files of a store that was replaced by a new one
        with agent(tmp_path / "other.db", fake_hub) as other:
            other.sync_once()
        shutil.rmtree(state)
        shutil.copytree(tmp_path / "other.db.state", state)
        db.unlink()
        for n in range(10):
            fake_hub.upsert(make_item(n, classification={"scheme": "industry", "value": "C"}))
    elif damage == "bit-flip":
        data = bytearray((generation / "pdq.idx").read_bytes())
        data[-1] ^= 1
        (generation / "pdq.idx").write_bytes(bytes(data))
    elif damage == "store-disagrees":  # e.g. the database restored from an older backup
        with sqlite3.connect(db) as conn:
            conn.execute(
                "DELETE FROM agent_fingerprints WHERE item_pk NOT IN"
                " (SELECT id FROM agent_items WHERE item_id = 'item-1')"
            )
            conn.execute("DELETE FROM agent_items WHERE item_id != 'item-1'")
    else:
        (generation / "meta-pks.npy").unlink()
    with agent(db, fake_hub) as restarted:
        if damage == "other-store":
            restarted.sync_once()
        restarted.load()
        assert restarted.load_report["source"] == "store"
        got = answers(restarted, range(10))
        if damage == "store-disagrees":
            assert [bool(g) for g in got] == [n == 1 for n in range(10)]
        else:
            assert all([m["item"] for m in g] == [f"item-{n}"] for n, g in enumerate(got))
        if damage == "other-store":
            assert got[0][0]["classification"]["value"] == "C"


def test_a_save_cut_short_leaves_the_previous_files_in_use(tmp_path, fake_hub: FakeHub) -> None:
    db, state = _synced(tmp_path, fake_hub, 5)
    before = statefiles.read_manifest(state)
    # What crashes during later saves leave: a half-written folder (of a process now gone), and a
    # complete one renamed into place just before CURRENT was to point at it.
    half = state / f".tmp-{2**22 + 1}-deadbeef"  # no process has a pid above 2**22
    shutil.copytree(state / before["generation"], half)
    (half / "pdq.idx").write_bytes(b"half")
    unpublished = state / "snap-000000009999-deadbeef"
    shutil.copytree(state / before["generation"], unpublished)
    (state / ".CURRENT.123.tmp").write_bytes(b"snap-0000")
    with agent(db, fake_hub) as restarted:
        restarted.load()
        assert restarted.load_report["source"] == "files"
        assert restarted.load_report["replayed"] == 0
        assert [m["item"] for m in answers(restarted, range(5))[4]] == ["item-4"]
        restarted.save_state()
    assert not half.exists() and not unpublished.exists()  # the next complete save clears them


def test_files_of_the_older_format_are_reported_ignored_and_replaced(
    tmp_path, fake_hub: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    # Format 1 kept manifest.json at the top, naming a gen-* folder: an agent upgraded on such a
    # folder rebuilds from its store (never crashes, never serves the old files) and saves anew.
    for n in range(6):
        fake_hub.upsert(make_item(n))
    db = tmp_path / "agent.db"
    with agent(db, fake_hub, state_dir=None) as first:
        first.sync_once()
        store_id, rev = first.store.identity()
    state = tmp_path / "agent.db.state"
    (state / "gen-000000000001-cafe0001").mkdir(parents=True)
    (state / "gen-000000000001-cafe0001" / "pdq.idx").write_bytes(b"old")
    old = {
        "format": 1,
        "store_id": store_id,
        "rev": rev,
        "items": 6,
        "generation": "gen-000000000001-cafe0001",
    }
    (state / "manifest.json").write_bytes(orjson.dumps({**old, "files": {}}))
    with caplog.at_level(logging.WARNING), agent(db, fake_hub) as restarted:
        restarted.load()
        assert restarted.load_report["source"] == "store"
        assert [m["item"] for m in answers(restarted, range(6))[5]] == ["item-5"]
    assert any("format 1" in r.message for r in caplog.records), caplog.text
    assert not (state / "gen-000000000001-cafe0001").exists() and not (state / "manifest.json").exists()
    with agent(db, fake_hub) as again:
        again.load()
        assert again.load_report["source"] == "files"


def test_scans_answer_from_memory_without_a_database_query(tmp_path, fake_hub: FakeHub) -> None:
    for n in range(10):
        fake_hub.upsert(make_item(n))
    with agent(tmp_path / "agent.db", fake_hub) as rt:
        rt.sync_once()
        statements: list[str] = []
        event.listen(rt.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        found = rt.scanner.evaluate_many([f"f{n}" for n in range(12)], [_hashed(n) for n in range(12)])
        assert [bool(r.matches) for r in found] == [n < 10 for n in range(12)]
        assert found[2].matches[0].meta.item_id == "item-2"
        assert statements == []


def _hashed(n: int):
    from hashhub.hashing import FileHashes

    return FileHashes(hashes={"pdq": pdq_hex(n), "md5": f"{n:032x}"}, quality={"pdq": 100}, error=None)


ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "drop", "fold"]), st.integers(0, 30), st.sampled_from(["A1", "B2", "C"])
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_metadata_columns_and_recent_changes_agree_with_a_plain_dict(steps) -> None:
    table, model = MetaTable(), {}
    table.hubs[1] = HUB_URL
    for op, pk, value in steps:
        if op == "put":
            row = MetaRow(
                f"id-{pk}-{value}",
                "verified",
                ("a", value),
                {"value": value},
                pk % 3,
                "active",
                pk=pk,
                hub_id=1,
            )
            table.apply([row], [])
            model[pk] = row
        elif op == "drop":
            table.apply([], [pk])
            model.pop(pk, None)
        else:
            table.folded()
        assert len(table) == len(model)
    for pk in range(31):
        got = table.get(pk)
        if pk not in model:
            assert got is None
            continue
        row = model[pk]
        assert got is not None and got[0] == 1
        meta = got[1]
        assert (meta.hub, meta.item_id, meta.list_name, meta.contributors) == (
            HUB_URL,
            row.item_id,
            "verified",
            row.contributors,
        )
        assert (meta.classification, meta.verifications, meta.status) == (
            row.classification,
            pk % 3,
            "active",
        )


def test_a_configured_state_dir_holds_the_files_and_a_restart_uses_it(
    tmp_path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PostgreSQL store has no folder beside it: HASHHUB_STATE_DIR (or --state-dir) names one.
    monkeypatch.setenv("HASHHUB_STATE_DIR", str(tmp_path / "elsewhere"))
    for n in range(10):
        fake_hub.upsert(make_item(n))
    db = tmp_path / "agent.db"
    with agent(db, fake_hub) as first:
        first.sync_once()
    assert statefiles.read_manifest(tmp_path / "elsewhere") is not None
    assert not (tmp_path / "agent.db.state").exists()
    with agent(db, fake_hub) as restarted:
        restarted.load()
        assert restarted.load_report["source"] == "files"
        assert [m["item"] for m in answers(restarted, range(3))[2]] == ["item-2"]


def _video(n: int) -> str:
    """A made-up vPDQ value (canonical text) of three distinct frames."""
    from hashhub.signals import VpdqSignal

    frames = [
        {"frame": i, "quality": 100, "pdq": pdq_hex(1000 * n + i), "timestamp": float(i)} for i in range(3)
    ]
    return VpdqSignal.parse(frames)


def test_a_first_load_from_the_store_equals_following_every_change(tmp_path, fake_hub: FakeHub) -> None:
    # The first load reads the store as columns; an agent that applied each sync's changes as they
    # came must hold exactly the same: items, metadata, withdrawals, replaced fingerprints, videos.
    grades = ["A1", "A2", "B1", "B2"]
    for n in range(30):
        classification = {"scheme": "industry", "value": grades[n % 4]}
        fake_hub.upsert(make_item(n, classification=classification, contributor=f"hotline-{n % 3}"))
    fake_hub.upsert(make_item(30, fingerprints={"md5": f"{30:032x}"}, list="restricted"))
    fake_hub.upsert(
        make_item(31, content_type="video", fingerprints={"vpdq": _video(31), "md5": f"{31:032x}"})
    )
    db = tmp_path / "agent.db"
    with agent(db, fake_hub, state_dir=None) as follower:
        follower.sync_once()
        for n in range(0, 30, 5):
            fake_hub.delete(f"item-{n}")
        fake_hub.upsert(make_item(7, fingerprints={"pdq": pdq_hex(107)}, classification={"value": "C"}))
        fake_hub.upsert(make_item(32, content_type="video", fingerprints={"vpdq": _video(32)}))
        follower.sync_once()
        with agent(db, fake_hub, state_dir=None) as loaded:
            loaded.load()
            assert loaded.load_report["source"] == "store"
            assert len(loaded.matcher) == len(follower.matcher) == 27
            assert answers(loaded, range(110)) == answers(follower, range(110))
            videos = [{"vpdq": _video(n)} for n in (31, 32)]
            found = [[m.as_dict() for m in ms] for ms in loaded.matcher.match_many(videos)]
            assert found == [[m.as_dict() for m in ms] for ms in follower.matcher.match_many(videos)]
            assert [[m["item"] for m in ms] for ms in found] == [["item-31"], ["item-32"]]
            assert [m["item"] for m in answers(loaded, [7])[0]] == []  # its old PDQ and MD5 are gone
            assert [m["item"] for m in answers(loaded, [107])[0]] == ["item-7"]


def test_the_store_read_as_columns_holds_what_its_changes_say(any_store) -> None:
    # SQLite and PostgreSQL: every live item once, in pk order, JSON values decoded and shared,
    # each signal's fingerprints grouped; withdrawn items and their fingerprints absent.
    from hashhub.agent.items import parse_item
    from hashhub.agent.store import Change

    hub = any_store.follow(HUB_URL, KEY)
    grades = ["A1", "B2"]
    items = [
        parse_item(make_item(n, classification={"scheme": "industry", "value": grades[n % 2]}))
        for n in range(8)
    ]
    items.append(parse_item(make_item(8, fingerprints={"md5": f"{8:032x}"})))
    any_store.apply_batch(hub.id, [Change(it.item_id, it) for it in items], 10)
    any_store.apply_batch(hub.id, [Change("item-3", None)], 11)
    rev, changed = any_store.changes_since(0)
    live = any_store.live_items()
    assert live.rev == rev and len(live) == len(changed) == 8
    for field in metatable.ROW_FIELDS:
        assert list(live.listing[field]) == [getattr(it, field) for it in changed], field
    assert live.listing["classification"][0] is live.listing["classification"][2]  # one shared dict
    by_signal = {
        name: (
            [it.pk for it in changed if name in it.fingerprints],
            [it.fingerprints[name] for it in changed if name in it.fingerprints],
        )
        for name in ("pdq", "md5")
    }
    assert live.fingerprints == by_signal
    assert "item-3" not in live.listing["item_id"]
