"""NCMEC-style XML files: the `GET /v2/entries` document, read and written as a whole list.

Reading streams the file with defusedxml (DTDs refused, so no entity tricks) and yields one item a
live `<image>`/`<video>`; `<deletedImage>`/`<deletedVideo>` entries are tombstones and are skipped.
Writing reuses the NCMEC endpoint's own entry renderer, so a file and the API never disagree.
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from typing import IO, Any, BinaryIO

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from hashhub.hub.compat import ncmec
from hashhub.hub.compat.entries import Entry
from hashhub.interchange.errors import FormatError

ENTRY_TAGS = {"image": "image", "video": "video"}
DELETED_TAGS = {"deletedImage", "deletedVideo"}


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _classification(text: str | None) -> dict[str, str]:
    """`A1` is the industry scheme's grade; `scheme:value` names another scheme (as the API writes it)."""
    text = (text or "").strip()
    scheme, sep, value = text.rpartition(":")
    return (
        {"scheme": scheme, "value": value} if sep else {"scheme": "industry" if text else "", "value": text}
    )


def item_of(el: ET.Element) -> dict[str, Any]:
    """The `POST /api/v1/items` item for one `<image>` or `<video>` element."""
    children = {_local(c.tag): c for c in el}
    fps = children.get("fingerprints")
    return {
        "external_id": (children["id"].text or "").strip() if "id" in children else None,
        "content_type": ENTRY_TAGS[_local(el.tag)],
        "classification": _classification(
            children["classification"].text if "classification" in children else ""
        ),
        "fingerprints": {
            _local(f.tag).lower(): (f.text or "").strip() for f in (fps if fps is not None else []) if f.text
        },
    }


def read(stream: BinaryIO) -> Iterator[dict[str, Any]]:
    """Items from an NCMEC-style XML stream, one per live entry, in file order."""
    depth = 0
    try:
        for event, el in SafeET.iterparse(stream, events=("start", "end"), forbid_dtd=True):
            name = _local(el.tag)
            if event == "start":
                depth += 1
                continue
            depth -= 1
            if name in ENTRY_TAGS and depth <= 2:  # root > container > entry (or root > entry)
                yield item_of(el)
                el.clear()
            elif name in DELETED_TAGS:
                el.clear()
    except (DefusedXmlException, ET.ParseError) as exc:
        raise FormatError(f"The XML file is not acceptable ({type(exc).__name__}: {exc}).") from None


def write(entries: Iterable[Entry], out: IO[bytes]) -> int:
    """Write `<queryResult>` with `<images>` then `<videos>`; returns the number of entries."""
    count = 0
    with tempfile.TemporaryFile() as images, tempfile.TemporaryFile() as videos:
        latest = {"image": None, "video": None}
        for e in entries:
            kind = "video" if e.content_type == "video" else "image"
            (videos if kind == "video" else images).write(
                ET.tostring(ncmec.entry_element(e), encoding="utf-8")
            )
            latest[kind] = max(latest[kind] or e.updated_at, e.updated_at)
            count += 1
        out.write(b'<?xml version="1.0" encoding="utf-8"?>\n')
        out.write(b'<queryResult xmlns="%s">' % ncmec.NAMESPACE.encode())
        for tag, kind, body in (("images", "image", images), ("videos", "video", videos)):
            if latest[kind] is None:
                continue
            out.write(b'<%s maxTimestamp="%s">' % (tag.encode(), ncmec.format_time(latest[kind]).encode()))
            body.seek(0)
            while chunk := body.read(1 << 20):
                out.write(chunk)
            out.write(b"</%s>" % tag.encode())
        out.write(b"</queryResult>\n")
    return count
