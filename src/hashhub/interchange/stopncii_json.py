"""StopNCII-style JSON files: `{"count": N, "hashRecords": [...]}`, the FetchHashes page shape.

A record is a hash, not an item: reading makes one item per live record (`hashStatus` neither
`Withdrawn` nor `Deleted`), its external id `<signalType>:<hash>` so importing the same file twice
changes nothing. StopNCII records carry no classification: a record may hold one in an extra
`classification` field (hashhub writes it) or as a `scheme:value` tag in its CSP feedback, otherwise
the importer's default applies (`stopncii.item_of`, shared with `POST /SubmitHashes`). Writing makes
one record per hash with every item holding it as a case.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO, Any, BinaryIO

import orjson

from hashhub.hub.compat import stopncii
from hashhub.hub.compat.entries import Entry
from hashhub.interchange.errors import FormatError

MAX_BYTES = 2 * 1024**3


def read(stream: BinaryIO, default: dict[str, str] | None = None) -> Iterator[object]:
    """Items (or rejection messages, which the importer reports by row) from a StopNCII JSON file."""
    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise FormatError("A StopNCII JSON file is at most 2 GiB; split it into pages.")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"The file is not valid JSON: {exc}.") from None
    records = body.get("hashRecords") if isinstance(body, dict) else body
    if not isinstance(records, list):
        raise FormatError('Expected {"hashRecords": [...]} or a list of hash records.')
    for record in records:
        if not isinstance(record, dict):
            yield "a hash record must be a JSON object"
        elif not stopncii.is_gone(record):
            yield stopncii.item_of(record, default)


def write(entries: Iterable[Entry], out: IO[bytes]) -> int:
    """One record per (signal type, hash) over the entries; returns the number of records."""
    records: dict[tuple[str, str], dict[str, Any]] = {}
    for e in entries:
        key = stopncii.record_key(e)
        if key is None:
            continue
        status = "Withdrawn" if e.withdrawn else "Active"
        record = records.setdefault(
            key,
            {
                "lastModtimestamp": e.second,
                "signalType": key[0],
                "hashValue": key[1],
                "hashStatus": status,
                "caseNumbers": {},
                "CSPFeedbacks": [],
                "classification": {"scheme": e.scheme, "value": e.classification},
            },
        )
        record["caseNumbers"][str(e.id)] = status
        record["lastModtimestamp"] = max(record["lastModtimestamp"], e.second)
        if status == "Active":
            record["hashStatus"] = "Active"
    out.write(orjson.dumps({"count": len(records), "hashRecords": list(records.values())}))
    out.write(b"\n")
    return len(records)
