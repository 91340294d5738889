"""`hashhub hub ...` as an operator runs it: real processes on a real SQLite file."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.hub.conftest import _free_port, item
from typer.testing import CliRunner, Result

from hashhub import cli


def hashhub(*args: str, db: str, check: bool = True) -> Result:
    """Run the real CLI in-process (a subprocess per command would spend most of its time importing)."""
    if not cli.app.registered_groups:
        cli._register()
    result = CliRunner().invoke(cli.app, list(args), env={"HASHHUB_DB": db})
    if check:
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def test_admin_commands_then_import_csv_and_ndjson(tmp_path: Path, corpus: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    created = json.loads(hashhub("hub", "org", "create", "iwf", "--role", "contributor", db=db).stdout)
    assert set(created) >= {"org", "api_key"} and created["api_key"].startswith("hh_")
    hashhub("hub", "org", "create", "plat", "--role", "member", "--role", "contributor", db=db)
    lst = json.loads(
        hashhub("hub", "list", "create", "verified", "--read", "plat", "--write", "iwf", db=db).stdout
    )
    assert lst == {"name": "verified", "read": ["plat"], "write": ["iwf"]}
    granted = json.loads(
        hashhub("hub", "list", "grant", "verified", "plat", "--read", "--write", db=db).stdout
    )
    assert granted["write"] == ["iwf", "plat"]
    dup = hashhub("hub", "org", "create", "iwf", "--role", "member", db=db, check=False)
    assert dup.exit_code == 2 and "already exists" in dup.stderr
    assert hashhub("hub", "org", "create", "x", "--role", "king", db=db, check=False).exit_code == 2

    # CSV in the contract's columns, from the benign corpus's reference hashes (pretend-listed photos).
    with (corpus / "photos.reference.csv").open() as f:
        refs = list(csv.DictReader(f))[:300]
    sheet = tmp_path / "items.csv"
    with sheet.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "external_id",
                "content_type",
                "scheme",
                "classification",
                "reviewers",
                "md5",
                "sha1",
                "sha256",
                "pdq",
            ]
        )
        for r in refs:
            w.writerow(
                [r["file"], "image", "industry", "B1", "2", r["md5"], r["sha1"], r["sha256"], r["pdq"]]
            )
        w.writerow(["bad-row", "image", "industry", "Q7", "1", "", "", "", ""])
    out = hashhub("hub", "import", str(sheet), "--org", "iwf", "--list", "verified", db=db, check=False)
    assert out.exit_code == 1 and "rejected row 301" in out.stderr
    assert json.loads(out.stdout)["created"] == 300
    again = hashhub("hub", "import", str(sheet), "--org", "iwf", "--list", "verified", db=db, check=False)
    assert json.loads(again.stdout)["unchanged"] == 300  # idempotent

    lines = tmp_path / "items.ndjson"
    lines.write_text("\n".join(json.dumps(item(i)) for i in range(50)) + "\n")
    imported = json.loads(hashhub("hub", "import", str(lines), "--org", "iwf", db=db).stdout)  # its only list
    assert imported["created"] == 50 and imported["cursor"] == 350

    ambiguous = hashhub("hub", "import", str(lines), "--org", "plat", db=db, check=False)
    assert ambiguous.exit_code == 0  # plat may write only `verified`
    verified = json.loads(hashhub("hub", "audit", "verify", db=db).stdout)
    assert verified["ok"] is True


def test_serve_applies_migrations_and_answers(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fresh.db'}"
    port = _free_port()
    env = {**os.environ, "HASHHUB_DB": db}
    cmd = [sys.executable, "-c", "from hashhub.cli import main; main()", "hub", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"hub serve did not start: {proc.stderr.read() if proc.stderr else ''}")
                time.sleep(0.2)
        assert r.json() == {"status": "ok"}
        spec = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()
        for path in (
            "/api/v1/items",
            "/api/v1/feed",
            "/api/v1/snapshot",
            "/api/v1/match",
            "/api/v1/match/media",
        ):
            assert path in spec["paths"]
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/feed").status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)


def test_import_reads_gzip_and_reports_progress_in_file_bytes(tmp_path: Path) -> None:
    import gzip

    from tests.hub.conftest import open_hub

    from hashhub.hub import orgs
    from hashhub.hub.importer import import_file

    hub = open_hub(f"sqlite:///{tmp_path / 'hub.db'}")
    orgs.create_org(hub.engine, "iwf", ["contributor"])
    orgs.create_list(hub.engine, "verified", write=["iwf"])
    packed = tmp_path / "items.ndjson.gz"
    rows = [json.dumps(item(i)) for i in range(2500)] + ["{broken"]
    packed.write_bytes(gzip.compress("\n".join(rows).encode()))
    seen: list[int] = []
    report = import_file(hub, packed, "iwf", batch_size=1000, progress=seen.append)
    assert report.created == 2500 and report.rejected_count == 1
    assert report.rejected[0]["row"] == 2501 and "JSON" in report.rejected[0]["error"]
    assert seen == sorted(seen) and seen[-1] == packed.stat().st_size and len(seen) >= 3
    hub.close()


def test_import_with_save_pool_leaves_files_the_next_start_loads(tmp_path: Path) -> None:
    from tests.hub.conftest import open_hub

    from hashhub.hub import orgs, poolfile

    db = f"sqlite:///{tmp_path / 'hub.db'}"
    hub = open_hub(db)
    orgs.create_org(hub.engine, "iwf", ["contributor"])
    orgs.create_list(hub.engine, "verified", write=["iwf"])
    hub.close()
    rows = tmp_path / "items.ndjson"
    rows.write_text("\n".join(json.dumps(item(i)) for i in range(300)) + "\n")
    out = hashhub("hub", "import", str(rows), "--org", "iwf", "--save-pool", db=db)
    saved = json.loads(out.stdout)["pool_files"]
    assert saved and Path(saved).is_dir() and Path(saved).parent == tmp_path / "hub.db.pool"
    restarted = open_hub(db)
    assert poolfile.pool_dir(restarted.settings) == tmp_path / "hub.db.pool"
    restarted.refresh()
    assert len(restarted.pool) == 300
    restarted.close()
