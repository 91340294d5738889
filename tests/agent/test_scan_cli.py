"""`hashhub agent scan` (all cores, and on a local Dask cluster), review and report commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from .conftest import FakeHub, cli_app, corpus_rows, item_from_row

app = cli_app()
runner = CliRunner()


@pytest.fixture
def listed_db(runtime, fake_hub: FakeHub, corpus, tmp_path) -> tuple[str, list[Path], Path]:
    """An agent DB that lists 3 corpus photos (one unverified), and a folder with them + 5 others."""
    rows = corpus_rows(corpus, 8)
    for n, row in enumerate(rows[:3]):
        fake_hub.upsert(item_from_row(row, n, verification={"reviewers": 0 if n == 2 else 2}))
    assert runtime.sync_once()[0].ok
    folder = tmp_path / "uploads"
    (folder / "nested").mkdir(parents=True)
    for i, row in enumerate(rows):
        target = folder / ("nested" if i % 2 else "") / row["file"]
        shutil.copy(corpus / "photos" / row["file"], target)
    (folder / "notes.txt").write_text("not an image")
    listed = [folder / ("nested" if i % 2 else "") / r["file"] for i, r in enumerate(rows[:3])]
    return runtime.settings.db, listed, folder


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _check(lines: list[dict], listed: list[Path]) -> None:
    by_file = {Path(line["file"]).name: line for line in lines}
    assert len(lines) == 9
    assert {n for n, line in by_file.items() if line["matched"]} == {p.name for p in listed}
    assert by_file[listed[0].name]["action"] == "block_and_report"
    assert by_file[listed[2].name]["action"] == "review"
    assert by_file["notes.txt"]["action"] == "allow" and by_file["notes.txt"]["error"]
    match = by_file[listed[0].name]["matches"][0]
    assert set(match) >= {"item", "distance", "classification", "contributors", "verifications"}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_scan_folder_one_json_line_per_file(listed_db, workers: str) -> None:
    db, listed, folder = listed_db
    result = runner.invoke(app, ["agent", "scan", str(folder), "--db", db, "--workers", workers])
    assert result.exit_code == 0, result.output
    _check(_lines(result.stdout), listed)


def test_scan_on_a_local_dask_cluster(listed_db) -> None:
    distributed = pytest.importorskip("distributed")
    db, listed, folder = listed_db
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None, protocol="tcp"
    ) as cluster:
        result = runner.invoke(
            app, ["agent", "scan", str(folder), "--db", db, "--dask", cluster.scheduler_address]
        )
    assert result.exit_code == 0, result.output
    _check(_lines(result.stdout), listed)


def test_scan_missing_path_and_bad_policy_exit_2(listed_db, tmp_path) -> None:
    db, _, folder = listed_db
    missing = runner.invoke(app, ["agent", "scan", str(tmp_path / "nope"), "--db", db])
    assert missing.exit_code == 2 and "No such file or folder" in missing.output
    bad = tmp_path / "p.toml"
    bad.write_text('[[rules]]\naction = "nuke"')
    result = runner.invoke(app, ["agent", "scan", str(folder), "--db", db, "--policy", str(bad)])
    assert result.exit_code == 2 and "action must be one of" in result.output


def test_review_and_reports_from_the_cli(listed_db, tmp_path) -> None:
    db, listed, folder = listed_db
    assert runner.invoke(app, ["agent", "scan", str(folder), "--db", db, "--workers", "1"]).exit_code == 0
    pending = _lines(runner.invoke(app, ["agent", "review", "list", "--db", db]).stdout)
    assert [Path(p["file"]).name for p in pending] == [listed[2].name]
    no_reason = runner.invoke(
        app, ["agent", "review", "reject", str(pending[0]["id"]), "--reason", " ", "--db", db]
    )
    assert no_reason.exit_code == 2 and "needs a reason" in no_reason.output
    confirmed = runner.invoke(
        app, ["agent", "review", "confirm", str(pending[0]["id"]), "--reviewer", "ana", "--db", db]
    )
    assert confirmed.exit_code == 0 and json.loads(confirmed.stdout)["report"]
    twice = runner.invoke(app, ["agent", "review", "confirm", str(pending[0]["id"]), "--db", db])
    assert twice.exit_code == 2 and "already confirmed" in twice.output

    out = tmp_path / "reports.json"
    assert runner.invoke(app, ["agent", "reports", "export", "--db", db, "--out", str(out)]).exit_code == 0
    drafts = json.loads(out.read_text())
    # one automatic draft (block_and_report) per verified listed photo, one from the confirmed review
    assert len(drafts) == 3 and all(d["sent"] is False for d in drafts)
    assert sorted(d["file"]["viewed_by_person"] for d in drafts) == [False, False, True]


def test_policy_show_prints_the_default() -> None:
    result = runner.invoke(app, ["agent", "policy", "show"])
    assert result.exit_code == 0 and "[[rules]]" in result.stdout and "block_and_report" in result.stdout


def test_unreachable_database_exits_3_and_bad_url_exits_2() -> None:
    down = runner.invoke(app, ["agent", "status", "--db", "postgresql://nobody@127.0.0.1:1/agent"])
    assert down.exit_code == 3 and "Cannot open the agent database" in down.output
    bad = runner.invoke(app, ["agent", "status", "--db", "nosuchdriver://x/y"])
    assert bad.exit_code == 2 and "is not a database URL" in bad.output
