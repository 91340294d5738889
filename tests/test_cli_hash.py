"""`hashhub hash`: what a user running it sees on stdout, stderr and in the exit status."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hashhub import signals
from hashhub.cli import hash as hash_cli
from hashhub.hashing import Plan
from hashhub.signals import BytesHasher, HexDigestSignal
from hashhub.walk import walk

HASHHUB = Path(sys.executable).parent / "hashhub"
HEADER = ["file", "md5", "sha1", "sha256", "pdq", "pdq_quality"]


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A group, so the command is called `hash` as in the real app."""

    hash_cli.register(app)
    return app


@pytest.fixture(scope="module")
def reference(corpus: Path) -> dict[str, dict[str, str]]:
    with (corpus / "kodak.reference.csv").open(newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


@pytest.fixture
def folder(corpus: Path, tmp_path: Path) -> Path:
    """Three Kodak photos, one in a subfolder, plus a zero-byte file and a text file named .jpg."""
    for name in ("01.png", "02.png"):
        shutil.copy(corpus / "kodak" / name, tmp_path / name)
    (tmp_path / "sub").mkdir()
    shutil.copy(corpus / "kodak" / "03.png", tmp_path / "sub" / "03.png")
    return tmp_path


def _bad_files(folder: Path) -> None:
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture\n")


def _run(app: typer.Typer, *args: str) -> object:
    return CliRunner().invoke(app, ["hash", *args])


def test_csv_for_a_folder_matches_the_reference(
    app: typer.Typer, folder: Path, reference: dict[str, dict[str, str]]
) -> None:
    result = _run(app, str(folder), "--workers", "1")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == HEADER
    files = [row[0] for row in rows[1:]]
    assert files == [str(folder / "01.png"), str(folder / "02.png"), str(folder / "sub" / "03.png")]
    for row in rows[1:]:
        expected = reference[Path(row[0]).name]
        assert row[1:] == [expected[column] for column in HEADER[1:]]
    assert result.stderr == ""


def test_bad_files_are_reported_and_the_rest_still_hashed(app: typer.Typer, folder: Path) -> None:
    _bad_files(folder)
    result = _run(app, str(folder), "--workers", "1")
    assert result.exit_code == 1
    assert f"{folder / 'empty.jpg'}: file is empty" in result.stderr
    assert f"{folder / 'notes.jpg'}: not an image in a supported format" in result.stderr
    rows = {row["file"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert len(rows) == 5  # three photos, and the bad files with their crypto hashes
    assert rows[str(folder / "empty.jpg")]["md5"] == "d41d8cd98f00b204e9800998ecf8427e"
    assert rows[str(folder / "empty.jpg")]["pdq"] == ""
    assert rows[str(folder / "sub" / "03.png")]["pdq"]


def test_jsonl_has_the_same_keys_plus_error(app: typer.Typer, folder: Path) -> None:
    _bad_files(folder)
    result = _run(app, str(folder), "--format", "jsonl", "--workers", "1")
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 5
    by_name = {Path(record["file"]).name: record for record in records}
    assert list(by_name["01.png"]) == HEADER
    assert by_name["01.png"]["pdq_quality"] == 100
    assert by_name["notes.jpg"]["pdq"] is None
    assert by_name["notes.jpg"]["error"].startswith("not an image")


def test_signals_option(app: typer.Typer, folder: Path, reference: dict[str, dict[str, str]]) -> None:
    result = _run(app, str(folder / "01.png"), "--signals", "sha1,pdq")
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    expected = reference["01.png"]
    assert rows == [
        ["file", "sha1", "pdq", "pdq_quality"],
        [str(folder / "01.png"), expected["sha1"], expected["pdq"], expected["pdq_quality"]],
    ]


def test_md5_only_hashes_any_file_without_complaint(app: typer.Typer, folder: Path) -> None:
    _bad_files(folder)
    result = _run(app, str(folder), "--signals", "md5")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "file,md5"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--signals", "md5,nosuch thing"], "signal names are 1-64 characters"),
        (["--signals", "pdna"], "pdna: cannot be computed from a file"),
        (["--format", "xml"], "xml"),
        (["--workers", "0"], "greater than or equal to 1"),
    ],
)
def test_bad_usage_exits_2_with_a_message(
    app: typer.Typer, folder: Path, args: list[str], message: str
) -> None:
    result = _run(app, str(folder), *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_no_path_is_bad_usage(app: typer.Typer) -> None:
    result = _run(app)
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


def test_a_missing_path_is_reported_and_the_others_hashed(app: typer.Typer, folder: Path) -> None:
    result = _run(app, str(folder / "absent.png"), str(folder / "01.png"))
    assert result.exit_code == 1
    assert f"{folder / 'absent.png'}: No such file or directory" in result.stderr
    assert len(result.stdout.splitlines()) == 2  # header and 01.png


def test_the_installed_command_with_two_workers_gives_the_same_output(app: typer.Typer, folder: Path) -> None:
    """The real entry point, in a subprocess (no terminal: no progress bar), with a process pool."""
    _bad_files(folder)
    done = subprocess.run(
        [str(HASHHUB), "hash", str(folder), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count("hashhub hash: ") == 2
    assert done.stdout.startswith(",".join(HEADER) + "\n")
    assert done.stdout == _run(app, str(folder), "--workers", "1").stdout


def test_videos_get_vpdq_as_a_frame_list(app: typer.Typer, corpus: Path, tmp_path: Path) -> None:
    """The contract's video shape: `"vpdq": [{"frame", "quality", "pdq", "timestamp"}, ...]`."""
    pytest.importorskip("av", reason="PyAV (video decoding) is not installed")
    from tests.support import video_clips

    photos = sorted((corpus / "kodak").glob("*.png"))[:2]
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(video_clips.encode(video_clips.slideshow_frames(photos, seconds_each=2.0)))
    result = _run(app, str(clip), "--signals", "md5,vpdq", "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert list(record) == ["file", "md5", "vpdq"]
    assert len(record["vpdq"]) >= 2
    assert set(record["vpdq"][0]) == {"frame", "quality", "pdq", "timestamp"}
    assert record["vpdq"][0]["frame"] == 0


class _CrashOnMarker(HexDigestSignal, BytesHasher):
    """A digest that kills its process on files containing CRASH: a stand-in for a decoder bug."""

    name = "crashtest"
    media = frozenset({"image"})
    hex_length = 32

    @classmethod
    def new_hasher(cls) -> _Crasher:
        return _Crasher()


class _Crasher:
    def update(self, data: bytes) -> None:
        if b"CRASH" in data:
            os._exit(70)

    def hexdigest(self) -> str:
        return "0" * 32


def test_a_file_that_kills_its_worker_is_reported_and_the_rest_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hash_cli, "_WINDOW", 3)  # files go to the pool a few at a time, as in big runs
    for i in range(8):
        (tmp_path / f"{i}.txt").write_text("CRASH" if i == 3 else f"file {i}")
    chosen = Plan((signals.get("md5"), _CrashOnMarker))
    results = dict(hash_cli._hash_all(list(walk([tmp_path])), chosen, workers=2))
    assert len(results) == 8
    crashed = results.pop(str(tmp_path / "3.txt"))
    assert crashed.error == "the process decoding this file crashed"
    assert all(result.ok and len(result.hashes["md5"]) == 32 for result in results.values())
