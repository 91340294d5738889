"""NCMEC hash-sharing API v2 shapes: XML out (built with the stdlib), feedback XML in (parsed safely).

What python-threatexchange's `NCMECHashAPI` parses, and so what every document here keeps to:
- members are `<member id="INT">Name</member>`: the organisation's id and name;
- entries are `<image>`/`<video>` (or `<deletedImage>`/`<deletedVideo>` for withdrawn items) with one
  `<id>` (the hub's item id: unique and URL-safe), one `<member>`, `<timestamp>` (last change),
  `<classification>` and `<fingerprints>` with lowercase signal tags;
- a non-empty `<images>`/`<videos>` container carries `maxTimestamp` in exactly `%Y-%m-%dT%H:%M:%SZ`;
- `<paging><next>` is relative to the NCMEC base and starts `/v2/entries?`.

Feedback reasons are the hub's own reason codes, each under a stable GUID (a UUID5 of the code), so a
reason chosen through NCMEC's API reads the same in the hub's native feedback.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from hashhub.hub.compat.entries import Entry, Page
from hashhub.hub.errors import Invalid

NAMESPACE = "https://hashsharing.ncmec.org/hashsharing/v2"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
PAGE_SIZE = 1000
MAX_FEEDBACK_BYTES = 64 * 1024

#: NCMEC's fingerprint (and feedback) types, as `FingerprintType` in python-threatexchange spells them.
FINGERPRINT_TYPES = (
    "MD5",
    "SHA1",
    "PDNA",
    "PDQ",
    "NETCLEAN",
    "VIDENTIFIER",
    "TMK_PDQF",
    "SSVH_PDNA",
    "SSVH_SAFER_HASH",
)

_REASON_NAMESPACE = uuid.UUID("6f1c5d3e-2a8b-5f4e-9c71-0d2b3a4e5f60")
#: reason code (as stored in hub feedback) -> what it means; NCMEC clients show the code as the name.
NEGATIVE_REASONS = {
    "not_csam": "The media is not what the list says it is.",
    "wrong_grade": "The media belongs on the list but under another classification.",
    "poor_quality": "The fingerprint matches too much unrelated media to act on.",
    "other": "Another reason; the member can explain it in the hub.",
}
AFFIRMATIVE_REASON = "confirmed"


def reason_guid(code: str) -> str:
    return str(uuid.uuid5(_REASON_NAMESPACE, code))


_CODE_BY_GUID = {reason_guid(code): code for code in NEGATIVE_REASONS}


def fingerprint_type(value: str) -> str:
    """A feedback type from a URL (`PDQ`, `md5`...) in NCMEC's spelling, or Invalid."""
    upper = value.upper()
    if upper not in FINGERPRINT_TYPES:
        raise Invalid(f"Unknown fingerprint type {value!r}; use one of {', '.join(FINGERPRINT_TYPES)}.")
    return upper


def format_time(ts: float) -> str:
    return datetime.fromtimestamp(int(ts // 1), UTC).strftime(TIME_FORMAT)


def parse_time(text: str | None, name: str, default: float) -> float:
    """Unix seconds from NCMEC's `YYYY-MM-DDTHH:MM:SSZ` (fractions and offsets accepted too)."""
    if text is None or not text.strip():
        return default
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(f"'{name}' must be a time like 2024-01-31T23:59:59Z; got {text[:40]!r}.") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _root(tag: str) -> ET.Element:
    return ET.Element(tag, {"xmlns": NAMESPACE})


def _member(parent: ET.Element, org_id: int, name: str) -> ET.Element:
    el = ET.SubElement(parent, "member", {"id": str(org_id)})
    el.text = name
    return el


def to_bytes(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def status_document(org_id: int, name: str) -> bytes:
    root = _root("status")
    _member(root, org_id, name)
    return to_bytes(root)


def members_document(members: Iterable[tuple[int, str]]) -> bytes:
    root = _root("members")
    for org_id, name in members:
        _member(root, org_id, name)
    return to_bytes(root)


def reasons_document(kind: str) -> bytes:
    root = _root("feedbackReasons")
    holder = ET.SubElement(root, "availableFeedbackReasons")
    for code in NEGATIVE_REASONS:
        ET.SubElement(holder, "reason", {"guid": reason_guid(code), "name": code, "type": kind})
    return to_bytes(root)


def classification_text(scheme: str, value: str) -> str:
    """NCMEC's grades are the industry scheme's values; other schemes keep their name in front."""
    return value if scheme == "industry" else f"{scheme}:{value}"


def _feedback(parent: ET.Element, entry: Entry) -> None:
    if not entry.votes:
        return
    holder = ET.SubElement(parent, "feedback")
    # Hub feedback is about the item, so it stands for each of the item's fingerprints.
    for kind in sorted(k.upper() for k in entry.fingerprints):
        ups = [v for v in entry.votes if v.verdict == "affirmative"]
        downs = [v for v in entry.votes if v.verdict != "affirmative"]
        if ups:
            el = ET.SubElement(holder, "affirmativeFeedback", {"type": kind})
            box = ET.SubElement(el, "members")
            for v in ups:
                _member(box, v.org_id, v.org)
        if downs:
            el = ET.SubElement(holder, "negativeFeedback", {"type": kind})
            reasons = ET.SubElement(el, "reasons")
            for code in sorted({v.reason for v in downs}):
                ET.SubElement(reasons, "reason", {"guid": reason_guid(code), "name": code})
                box = ET.SubElement(reasons, "members")
                for v in downs:
                    if v.reason == code:
                        _member(box, v.org_id, v.org)


def entry_element(entry: Entry) -> ET.Element:
    tag = entry.content_type if entry.content_type in ("image", "video") else "image"
    if entry.withdrawn:
        tag = "deleted" + tag.capitalize()
    el = ET.Element(tag)
    ET.SubElement(el, "id").text = str(entry.id)
    _member(el, entry.contributor_id, entry.contributor)
    ET.SubElement(el, "timestamp").text = format_time(entry.updated_at)
    if entry.withdrawn:
        return el
    ET.SubElement(el, "classification").text = classification_text(entry.scheme, entry.classification)
    fps = ET.SubElement(el, "fingerprints")
    for name, value in sorted(entry.fingerprints.items()):
        ET.SubElement(fps, name.lower()).text = value
    _feedback(el, entry)
    return el


def _container(root: ET.Element, tag: str, entries: Sequence[Entry]) -> None:
    if not entries:
        return
    box = ET.SubElement(root, tag, {"maxTimestamp": format_time(max(e.updated_at for e in entries))})
    for e in entries:
        box.append(entry_element(e))


def next_link(since: str, until: str, page: Page, size: int) -> str:
    """The next page's path relative to the NCMEC base; the whole cursor rides in it."""
    assert page.next_start is not None
    query = {"from": since, "to": until, "start": page.next_start, "size": size, "max": page.max_id}
    return "/v2/entries?" + urlencode(query)


def entries_document(page: Page, next_path: str | None) -> bytes:
    root = _root("queryResult")
    _container(root, "images", [e for e in page.entries if e.content_type != "video"])
    _container(root, "videos", [e for e in page.entries if e.content_type == "video"])
    paging = ET.SubElement(root, "paging")
    if next_path:
        ET.SubElement(paging, "next").text = next_path  # ElementTree escapes '&' as '&amp;'
    return to_bytes(root)


def feedback_result_document(entry_id: str, verdict: str, status: str) -> bytes:
    root = _root("feedbackResult")
    ET.SubElement(root, "id").text = entry_id
    ET.SubElement(root, verdict)
    ET.SubElement(root, "status").text = status
    return to_bytes(root)


def error_document(message: str) -> bytes:
    root = _root("error")
    ET.SubElement(root, "message").text = message
    return to_bytes(root)


@dataclass(frozen=True, slots=True)
class Submission:
    verdict: str  # affirmative | negative
    reason: str  # a hub reason code


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse_feedback(body: bytes) -> Submission:
    """`<feedbackSubmission><affirmative/>` or `<negative><reasonIds><guid>G</guid>...`; Invalid if not.

    Parsed with defusedxml and DTDs refused, so entity expansion and external entities never run.
    """
    if len(body) > MAX_FEEDBACK_BYTES:
        raise Invalid(f"A feedback submission is at most {MAX_FEEDBACK_BYTES} bytes.")
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except (DefusedXmlException, ET.ParseError, ValueError) as exc:
        raise Invalid(f"The body is not acceptable XML ({type(exc).__name__}: {exc}).") from None
    if _local(root.tag) != "feedbackSubmission":
        raise Invalid(f"Expected a <feedbackSubmission> document, got <{_local(root.tag)}>.")
    votes = [child for child in root if _local(child.tag) in ("affirmative", "negative")]
    if len(votes) != 1:
        raise Invalid("A <feedbackSubmission> holds exactly one <affirmative/> or <negative> element.")
    vote = votes[0]
    if _local(vote.tag) == "affirmative":
        return Submission("affirmative", AFFIRMATIVE_REASON)
    guids = [(g.text or "").strip() for g in vote.iter() if _local(g.tag) == "guid"]
    if not guids:
        raise Invalid("Negative feedback needs <reasonIds><guid>...</guid></reasonIds>.")
    unknown = [g for g in guids if g not in _CODE_BY_GUID]
    if unknown:
        raise Invalid(
            f"Unknown feedback reason {unknown[0][:64]!r}; GET /v2/feedback/{{type}}/reasons lists them."
        )
    return Submission("negative", _CODE_BY_GUID[guids[0]])
