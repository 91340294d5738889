"""Key rotation with a grace period, and backup/restore of the hub database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hashhub.hub import orgs
from hashhub.hub.core import Hub
from hashhub.hub.errors import Unauthorized
from hashhub.hub.settings import HubSettings

from .conftest import bearer

PDQS = [f"{i:02x}" * 32 for i in range(1, 6)]


def _cli(*args: str) -> tuple[int, str]:
    from hashhub.cli import _register, app

    _register()
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _submit(client, key: str) -> None:
    grade = {"scheme": "industry", "value": "A1"}
    rows = [{"fingerprints": {"pdq": p}, "classification": grade} for p in PDQS]
    r = client.post("/api/v1/items", json={"list": "verified", "items": rows}, headers=bearer(key))
    assert r.status_code == 200, r.text


def test_rotated_key_works_through_its_grace_period_then_stops(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    hub = Hub(HubSettings(db=db, key_cache_seconds=0))
    try:
        old = orgs.create_org(hub.engine, "plat", ["member"])["api_key"]
        code, out = _cli("hub", "key", "rotate", old, "--grace", "1.5", "--db", db)
        assert code == 0, out
        rotated = json.loads(out)
        assert rotated["org"] == "plat" and rotated["scopes"] == ["member"]
        assert hub.keys.verify(rotated["api_key"]).org == "plat"
        assert hub.keys.verify(old).org == "plat"  # still inside the grace period
        time.sleep(1.6)
        with pytest.raises(Unauthorized, match="revoked"):
            hub.keys.verify(old)
        assert hub.keys.verify(rotated["api_key"]).org == "plat"
    finally:
        hub.close()


def test_rotation_without_grace_revokes_at_once_and_revoke_cuts_a_grace_short(tmp_path: Path) -> None:
    hub = Hub(HubSettings(db=f"sqlite:///{tmp_path / 'hub.db'}", key_cache_seconds=0))
    try:
        first = orgs.create_org(hub.engine, "plat", ["member"])["api_key"]
        second = orgs.rotate_key(hub.engine, first)["api_key"]
        with pytest.raises(Unauthorized):
            hub.keys.verify(first)
        third = orgs.rotate_key(hub.engine, second, grace_seconds=3600)["api_key"]
        assert hub.keys.verify(second).org == "plat"
        orgs.revoke_key(hub.engine, second)
        with pytest.raises(Unauthorized):
            hub.keys.verify(second)
        assert hub.keys.verify(third).org == "plat"
    finally:
        hub.close()


def test_rotating_a_revoked_or_unknown_key_is_a_clear_error(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    hub = Hub(HubSettings(db=db))
    try:
        key = orgs.create_org(hub.engine, "plat", ["member"])["api_key"]
        orgs.revoke_key(hub.engine, key)
    finally:
        hub.close()
    code, out = _cli("hub", "key", "rotate", key, "--db", db)
    assert code == 2 and "already revoked" in out
    code, out = _cli("hub", "key", "rotate", "0123456789ab", "--db", db)
    assert code == 2 and "no key with id" in out


def _table_rows(conn: sa.Connection) -> dict[str, list[tuple]]:
    names = sa.inspect(conn).get_table_names()
    return {n: sorted(map(tuple, conn.execute(sa.text(f'SELECT * FROM "{n}"'))), key=repr) for n in names}


def test_sqlite_backup_while_serving_restores_to_an_identical_hub(hub_client, tmp_path: Path) -> None:
    client, keys = hub_client()
    _submit(client, keys["contrib"])
    db = str(client.app.state.hub.engine.url)
    target = tmp_path / "backup.db"
    code, out = _cli("hub", "backup", str(target), "--db", db)  # the hub is still open and serving
    assert code == 0, out
    assert json.loads(out)["bytes"] == target.stat().st_size
    assert not (tmp_path / "backup.db-wal").exists()
    with sqlite3.connect(target) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    original = _table_rows_of(db)
    restored_hub = Hub(HubSettings(db=f"sqlite:///{target}"))  # restore = serve from the copy
    try:
        with restored_hub.engine.connect() as conn:
            assert _table_rows(conn) == original
        assert restored_hub.keys.verify(keys["member"]).org == "member"
    finally:
        restored_hub.close()


def _table_rows_of(url: str) -> dict[str, list[tuple]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return _table_rows(conn)
    finally:
        engine.dispose()


def test_backup_refuses_postgres_and_missing_files_with_a_message(tmp_path: Path) -> None:
    code, out = _cli("hub", "backup", str(tmp_path / "b.db"), "--db", "postgresql+psycopg://u@127.0.0.1:1/x")
    assert code == 2 and "pg_dump" in out
    code, out = _cli("hub", "backup", str(tmp_path / "b.db"), "--db", str(tmp_path / "hub.db"))
    assert code == 2


@pytest.mark.postgres
def test_pg_dump_and_pg_restore_round_trip(postgres_server, postgres_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from hashhub.hub.app import create_app
    from tests.support.postgres import _binaries

    app = create_app(HubSettings(db=postgres_url))
    hub = app.state.hub
    contrib = orgs.create_org(hub.engine, "contrib", ["contributor"])["api_key"]
    orgs.create_org(hub.engine, "member", ["member"])
    orgs.create_list(hub.engine, "verified", read=["member"], write=["contrib"])
    with TestClient(app) as client:
        _submit(client, contrib)
    bindir = _binaries()
    assert bindir is not None
    server = postgres_server
    conn_args = ["-h", server.host, "-p", str(server.port), "-U", server.user]
    dump = tmp_path / "hub.dump"
    source_db = sa.engine.make_url(postgres_url).database
    subprocess.run([str(bindir / "pg_dump"), *conn_args, "-Fc", "-f", str(dump), source_db], check=True)
    restored = server.create_database()
    try:
        cmd = [str(bindir / "pg_restore"), *conn_args, "--no-owner", "-d", restored, str(dump)]
        subprocess.run(cmd, check=True)
        restored_url = server.url(restored)
        assert _table_rows_of(restored_url) == _table_rows_of(postgres_url)
        again = Hub(HubSettings(db=restored_url))  # the restored database opens as a hub
        try:
            assert again.refresh() == hub.refresh()
        finally:
            again.close()
    finally:
        server.drop_database(restored)
