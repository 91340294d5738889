"""CSV and NDJSON, written in exactly the shapes `hashhub hub import` reads back.

NDJSON is one item a line in the feed's item shape (the `POST /api/v1/items` fields plus the hub's
`id`, `list`, `contributor`, `status` and times, which import ignores). CSV has the contract columns
`external_id,content_type,scheme,classification,reviewers` then one column per text fingerprint type
present (md5, sha1, sha256, pdq first); structured fingerprints such as vPDQ only travel in NDJSON.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable
from typing import IO, Any

import orjson

from hashhub.hub.importer import CSV_COLUMNS

FIRST_SIGNALS = ("md5", "sha1", "sha256", "pdq")


def write_ndjson(docs: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    count = 0
    for doc in docs:
        out.write(orjson.dumps(doc) + b"\n")
        count += 1
    return count


def _signals(doc: dict[str, Any]) -> list[str]:
    return [k for k, v in (doc.get("fingerprints") or {}).items() if isinstance(v, str)]


def write_csv(docs: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    """Two passes over a spooled copy: the header needs every fingerprint type that occurs."""
    seen: set[str] = set()
    count = 0
    with tempfile.TemporaryFile() as spool:
        for doc in docs:
            seen.update(_signals(doc))
            spool.write(orjson.dumps(doc) + b"\n")
            count += 1
        signals = [*FIRST_SIGNALS, *sorted(seen - set(FIRST_SIGNALS))]
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        writer = csv.writer(text)
        writer.writerow([*CSV_COLUMNS, *signals])
        spool.seek(0)
        for line in spool:
            doc = orjson.loads(line)
            grade = doc.get("classification") or {}
            fps = doc.get("fingerprints") or {}
            reviewers = (doc.get("verification") or {}).get("reviewers", 0)
            base = [doc.get("external_id") or "", doc.get("content_type", "image")]
            base += [grade.get("scheme", ""), grade.get("value", ""), reviewers]
            writer.writerow(base + [fps.get(s, "") if isinstance(fps.get(s), str) else "" for s in signals])
        text.detach()  # leave `out` open for the caller
    return count
