"""`hashhub hub export` / `import` in every interchange format: what goes out comes back in, and the
peers' own parsers read the files."""

from __future__ import annotations

import enum
import gzip
import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import dacite
import orjson
import pytest
from threatexchange.exchanges.clients.ncmec import hash_api
from threatexchange.exchanges.clients.stopncii import api as stopncii_api

from hashhub.hub import orgs, snapshot
from tests.compat.conftest import image_or_video
from tests.hub.conftest import open_hub, populate
from tests.hub.test_cli import hashhub

ROWS = 60


def live(url: str, org: str = "plat") -> list[dict[str, Any]]:
    hub = open_hub(url)
    try:
        chunks = b"".join(snapshot.open_stream(hub, orgs.acting_as(hub.engine, org)))
    finally:
        hub.close()
    return [d for d in map(orjson.loads, chunks.splitlines()) if "id" in d]


def shape(docs: list[dict[str, Any]], signals: tuple[str, ...] | None = None) -> Counter:
    """What a format must carry across: media kind, grade and fingerprints (or some of them)."""
    out: Counter = Counter()
    for d in docs:
        fps = d["fingerprints"]
        if signals is not None:
            fps = {k: v for k, v in fps.items() if (d["content_type"], k) in signals}
        out[
            (
                d["content_type"],
                d["classification"]["scheme"],
                d["classification"]["value"],
                *sorted(fps.items()),
            )
        ] += 1
    return out


def new_hub(tmp_path: Path, name: str) -> str:
    url = f"sqlite:///{tmp_path / name}"
    hub = open_hub(url)
    populate(hub)
    hub.close()
    return url


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    """A hub whose `verified` list holds 60 items, loaded with the hub's own NDJSON import."""
    tmp = tmp_path_factory.mktemp("source")
    url = new_hub(tmp, "a.db")
    rows = [image_or_video(n) for n in range(ROWS)]
    for row in rows[::7]:
        row["fingerprints"]["sha1"] = "ab" * 20
    sheet = tmp / "items.ndjson"
    sheet.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    hashhub("hub", "import", str(sheet), "--org", "iwf", "--list", "verified", db=url)
    docs = live(url)
    assert len(docs) == ROWS
    return url, docs


CARRIED = {
    "ndjson": None,
    "csv": None,
    "ncmec-xml": None,
    "stopncii-json": (("image", "pdq"), ("video", "md5")),
}


@pytest.mark.parametrize("fmt", list(CARRIED))
def test_export_then_import_round_trips(source: tuple[str, list], tmp_path: Path, fmt: str) -> None:
    url, docs = source
    suffix = {"ndjson": "ndjson", "csv": "csv", "ncmec-xml": "xml", "stopncii-json": "json"}[fmt]
    out = tmp_path / f"list.{suffix}"
    result = hashhub("hub", "export", str(out), "--org", "plat", db=url)
    assert json.loads(result.stdout) == {"format": fmt, "written": ROWS}

    target = new_hub(tmp_path, "b.db")
    hashhub("hub", "import", str(out), "--org", "ncmec", "--list", "verified", db=target)
    signals = CARRIED[fmt]
    assert shape(live(target), signals) == shape(docs, signals)


def test_files_read_by_the_peers_own_parsers(source: tuple[str, list], tmp_path: Path) -> None:
    url, docs = source
    hashhub("hub", "export", str(tmp_path / "l.xml"), "--org", "plat", db=url)
    hashhub("hub", "export", str(tmp_path / "l.json"), "--org", "plat", db=url)

    root = ET.parse(tmp_path / "l.xml").getroot()
    for el in root.iter():
        el.tag = el.tag.rpartition("}")[2]  # as the NCMEC client strips namespaces
    parsed = hash_api.GetEntriesResponse.from_xml(hash_api._XMLWrapper(root), 0)
    assert {u.id for u in parsed.updates} == {d["id"] for d in docs}
    assert parsed.max_timestamp > 0

    # The StopNCII client's own record type, converted the way its fetch converts each record.
    body = json.loads((tmp_path / "l.json").read_text())
    cast = dacite.Config(cast=[enum.Enum, set])
    typed = [dacite.from_dict(stopncii_api.StopNCIIHashRecord, r, config=cast) for r in body["hashRecords"]]
    assert len(typed) == body["count"] == ROWS
    assert {r.hashStatus for r in typed} == {stopncii_api.StopNCIICaseStatus.Active}


def test_gzip_and_default_classification_for_stopncii(tmp_path: Path) -> None:
    url = new_hub(tmp_path, "c.db")
    records = {
        "hashRecords": [
            {"signalType": "StopNCIISignalType.ImagePDQ", "hashValue": "a" * 64, "hashStatus": "Active"},
            {"signalType": "VideoMD5", "hashValue": "b" * 32, "hashStatus": "Active"},
            {"signalType": "ImagePDQ", "hashValue": "c" * 64, "hashStatus": "Withdrawn"},
            {"signalType": "Text", "hashValue": "hello", "hashStatus": "Active"},
        ]
    }
    path = tmp_path / "hashes.json.gz"
    path.write_bytes(gzip.compress(orjson.dumps(records)))
    no_grade = hashhub("hub", "import", str(path), "--org", "iwf", "--list", "verified", db=url, check=False)
    assert no_grade.exit_code == 1 and "no classification" in no_grade.stderr

    result = hashhub(
        "hub", "import", str(path), "--org", "iwf", "--classification", "industry:B1", db=url, check=False
    )
    assert result.exit_code == 1  # the Text record has no hub form: reported by its number, others written
    assert "rejected row 3" in result.stderr and "Text" in result.stderr
    assert json.loads(result.stdout)["created"] == 2
    got = {(d["content_type"], *d["fingerprints"].items()) for d in live(url)}
    assert got == {("image", ("pdq", "a" * 64)), ("video", ("md5", "b" * 32))}


HOSTILE_XML = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>
<queryResult><images><image><id>&b;</id></image></images></queryResult>"""


@pytest.mark.parametrize(
    ("name", "body", "args", "message"),
    [
        ("bomb.xml", HOSTILE_XML, (), "not acceptable"),
        ("broken.xml", b"<queryResult><images><image>", (), "not acceptable"),
        ("bad.json", b"{not json", (), "not valid JSON"),
        ("list.json", b'{"hashRecords": 5}', (), "hashRecords"),
        ("list.txt", b"", (), "--format"),
        ("list.xml", b"<queryResult/>", ("--format", "yaml"), "Unknown format"),
        ("list.json", b"[]", ("--classification", "A1"), "scheme:value"),
    ],
)
def test_bad_files_exit_2_with_a_clear_message(
    tmp_path: Path, name: str, body: bytes, args: tuple[str, ...], message: str
) -> None:
    url = new_hub(tmp_path, "d.db")
    path = tmp_path / name
    path.write_bytes(body)
    result = hashhub("hub", "import", str(path), "--org", "iwf", *args, db=url, check=False)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert message in result.stderr


def test_export_errors_leave_no_file(source: tuple[str, list], tmp_path: Path) -> None:
    url, _ = source
    out = tmp_path / "x.csv"
    result = hashhub("hub", "export", str(out), "--org", "plat", "--list", "restricted", db=url, check=False)
    assert result.exit_code == 2 and "may not read" in result.stderr
    assert not out.exists() and not list(tmp_path.glob("*.part"))
