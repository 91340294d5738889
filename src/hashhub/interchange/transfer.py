"""Import and export a list in any interchange format, on the hub's own services.

Export reads the hub's snapshot as the member organisation (so only lists granted to it, and the
read is audited like any snapshot) and writes one of the formats. Import of CSV and NDJSON is the
hub's importer as it is; NCMEC XML and StopNCII JSON are first converted to the importer's NDJSON
(a temporary file), so batching, validation, dedup and audit are the importer's too. Records that
cannot become items are reported with their number in the source file, like the importer's rows.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

import orjson
import sqlalchemy as sa

from hashhub import db
from hashhub.hub import importer, orgs, snapshot
from hashhub.hub.compat.entries import Entry
from hashhub.hub.core import Hub
from hashhub.hub.errors import Invalid
from hashhub.hub.models import organisations
from hashhub.interchange import ncmec_xml, stopncii_json, tables

FORMATS = ("csv", "ndjson", "ncmec-xml", "stopncii-json")
_SUFFIXES = {
    ".csv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".xml": "ncmec-xml",
    ".json": "stopncii-json",
}


def detect(path: Path | str, given: str | None = None) -> str:
    """The format named by `given`, or by the file name's suffix (a trailing `.gz` is ignored)."""
    if given and given != "auto":
        if given not in FORMATS:
            raise Invalid(f"Unknown format {given!r}; use one of {', '.join(FORMATS)}.")
        return given
    name = str(path).lower().removesuffix(".gz")
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    raise Invalid(f"Cannot tell the format of {Path(path).name!r} from its name; choose one with --format.")


def parse_classification(text: str | None) -> dict[str, str] | None:
    """`scheme:value` (e.g. `industry:A1`) as an item classification, or None when not given."""
    if not text:
        return None
    scheme, sep, value = text.partition(":")
    if not sep or not scheme or not value:
        raise Invalid(f"A classification is written scheme:value, e.g. industry:A1; got {text!r}.")
    return {"scheme": scheme, "value": value}


# -- export ------------------------------------------------------------------------------------


def _documents(hub: Hub, org: str, lists: Sequence[str] | None) -> Iterator[dict[str, Any]]:
    principal = orgs.acting_as(hub.engine, org)
    lines = b""
    for chunk in snapshot.open_stream(hub, principal, list(lists) if lists else None):
        lines += chunk
        *complete, lines = lines.split(b"\n")
        for line in complete:
            doc = orjson.loads(line)
            if "id" in doc:  # the first line is {"cursor": C}
                yield doc


def _entries(hub: Hub, docs: Iterable[dict[str, Any]]) -> Iterator[Entry]:
    with db.read(hub.engine) as conn:
        ids = {r.name: r.id for r in conn.execute(sa.select(organisations.c.name, organisations.c.id))}
    for doc in docs:
        grade = doc.get("classification") or {}
        yield Entry(
            id=int(doc["id"]),
            contributor_id=ids.get(doc.get("contributor", ""), 0),
            contributor=doc.get("contributor", ""),
            content_type=doc.get("content_type", "image"),
            status=doc.get("status", "active"),
            scheme=grade.get("scheme", ""),
            classification=grade.get("value", ""),
            updated_at=datetime.fromisoformat(doc["updated_at"]).timestamp(),
            fingerprints={k: v for k, v in doc.get("fingerprints", {}).items() if isinstance(v, str)},
        )


def export_list(hub: Hub, org: str, out: IO[bytes], fmt: str, lists: Sequence[str] | None = None) -> int:
    """Write the live items `org` may read (optionally only `lists`) to `out`; returns how many
    items (records, for StopNCII JSON) were written."""
    docs = _documents(hub, org, lists)
    if fmt == "ndjson":
        return tables.write_ndjson(docs, out)
    if fmt == "csv":
        return tables.write_csv(docs, out)
    if fmt == "ncmec-xml":
        return ncmec_xml.write(_entries(hub, docs), out)
    if fmt == "stopncii-json":
        return stopncii_json.write(_entries(hub, docs), out)
    raise Invalid(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")


# -- import ------------------------------------------------------------------------------------


def _open(path: Path) -> BinaryIO:
    """The file's bytes, gunzipped when it starts with gzip's magic number."""
    with path.open("rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else path.open("rb")  # type: ignore[return-value]


def _rows(fmt: str, stream: BinaryIO, default: dict[str, str] | None) -> Iterator[object]:
    if fmt == "ncmec-xml":
        for item in ncmec_xml.read(stream):
            if default and not item["classification"]["value"]:
                item["classification"] = default
            yield item
    else:
        yield from stopncii_json.read(stream, default)


def import_file(
    hub: Hub,
    path: Path,
    org: str,
    list_name: str | None = None,
    *,
    fmt: str | None = None,
    classification: str | None = None,
    batch_size: int = 10_000,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> importer.ImportReport:
    """Import `path` (any format, optionally gzipped) into `list_name` as `org`."""
    fmt = detect(path, fmt)
    default = parse_classification(classification)
    if fmt in ("csv", "ndjson"):
        # The hub's importer tells CSV from NDJSON by the name; give it a name that says which.
        with tempfile.TemporaryDirectory() as tmp:
            named = path
            if ("csv" in fmt) != (".csv" in path.name.lower()):
                named = Path(tmp) / f"import.{fmt}"
                named.symlink_to(path.resolve())
            return importer.import_file(
                hub, named, org, list_name, batch_size=batch_size, strict=strict, progress=progress
            )
    size = path.stat().st_size
    with tempfile.TemporaryDirectory() as tmp:
        converted = Path(tmp) / "import.ndjson"
        source_rows: list[int] = []  # source record number of each converted line
        refused: list[dict[str, Any]] = []
        with _open(path) as stream, converted.open("wb") as out:
            for number, row in enumerate(_rows(fmt, stream, default), start=1):
                if isinstance(row, str):
                    refused.append({"row": number, "error": row})
                    continue
                out.write(orjson.dumps(row) + b"\n")
                source_rows.append(number)
        scale = size / max(1, converted.stat().st_size)
        report = importer.import_file(
            hub,
            converted,
            org,
            list_name,
            batch_size=batch_size,
            strict=strict,
            progress=(lambda done: progress(int(done * scale))) if progress else None,
        )
    for r in report.rejected:
        r["row"] = source_rows[r["row"] - 1]
    report.rows += len(refused)
    report.rejected_count += len(refused)
    report.rejected = sorted(report.rejected + refused, key=lambda r: r["row"])[:100]
    return report
