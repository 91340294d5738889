"""StopNCII API v1 shapes: hash records with case numbers, a paging token, and CSP feedback.

StopNCII thinks in hashes, not items: one record per (signal type, hash value), with every case
(item) that carries the hash and an aggregate status. A record is built at read time from the
current state of all readable items sharing the hash, so a later record for the same hash always
tells the whole truth (the client replaces earlier ones): `Active` while any readable item holding it
is live, `Withdrawn` once none is. Image PDQ and video MD5 are the types StopNCII clients keep.

Paging: a walk over items changed in [startTimestamp, until) in id order, where `until` is fixed on
the first page and rides in the token with the next id. `nextSetTimestamp` (the same on every page)
is `until` less a safety margin, never earlier than the walk's start: a write stamped just before
`until` but committed after a page was read is delivered again next time rather than lost.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashhub import signals
from hashhub.hub import auth, feedback, ingest, orgs
from hashhub.hub.compat.entries import Entry, Page, Vote, Window, load_votes
from hashhub.hub.core import Hub
from hashhub.hub.errors import Invalid, NotFound

SAFETY_MARGIN = 60  # seconds re-read on the next set; covers writers that commit late
MAX_PAGE = 1000

#: (content type, hub signal) -> StopNCII signalType
SIGNAL_TYPES = {("image", "pdq"): "ImagePDQ", ("video", "md5"): "VideoMD5"}
_HUB_SIGNAL = {v: k[1] for k, v in SIGNAL_TYPES.items()}

#: StopNCII feedbackValue -> hub verdict and default reason (others are accepted and not recorded)
FEEDBACK_VERDICTS = {"Blocked": ("affirmative", "confirmed"), "NotBlocked": ("negative", "not_blocked")}
FEEDBACK_VALUES = (
    "Unknown",
    "None",
    "QualityUnknown",
    "PendingReview",
    "Blocked",
    "NotBlocked",
    "Withdrawn",
    "Deleted",
)
_CONTENT = {kind: content for (content, _), kind in SIGNAL_TYPES.items()}
_GONE = {"Withdrawn", "Deleted"}
_TOKEN = re.compile(r"^v1\.(-?\d{1,12})\.(-?\d{1,12})\.(\d{1,19})$")


@dataclass(frozen=True, slots=True)
class Walk:
    """Where a FetchHashes walk stands: its fixed window and the next item id."""

    start_ts: int
    until: int
    next_id: int

    def token(self) -> str:
        return f"v1.{self.start_ts}.{self.until}.{self.next_id}"

    @property
    def next_set(self) -> int:
        return max(self.start_ts, self.until - SAFETY_MARGIN)

    def window(self, size: int) -> Window:
        return Window(since=self.start_ts, until=self.until, start=self.next_id, size=size)


def begin(start_ts: int, token: str | None) -> Walk:
    """The walk a request continues (from its token) or starts now."""
    if token:
        m = _TOKEN.match(token)
        if not m:
            raise Invalid("'nextPageToken' is not a token this hub gave out; start again without it.")
        return Walk(int(m[1]), int(m[2]), int(m[3]))
    return Walk(start_ts, math.floor(time.time()) + 1, 1)  # the current second included


def record_key(entry: Entry) -> tuple[str, str] | None:
    """(StopNCII signal type, hash) for an entry, or None when it has no StopNCII form."""
    for (content, signal), kind in SIGNAL_TYPES.items():
        value = entry.fingerprints.get(signal)
        if entry.content_type == content and value:
            return kind, value
    return None


def _feedbacks(votes: list[Vote]) -> list[dict[str, Any]]:
    """One CSP feedback per (organisation, value), its tags the reasons given on any case."""
    merged: dict[tuple[str, str], set[str]] = {}
    for v in votes:
        value = "Blocked" if v.verdict == "affirmative" else "NotBlocked"
        merged.setdefault((v.org, value), set()).add(v.reason)
    return [{"source": o, "feedbackValue": f, "tags": sorted(t)} for (o, f), t in sorted(merged.items())]


def records(hub: Hub, principal: auth.Principal, readable: dict[int, str], page: Page) -> list[dict]:
    """One record per hash on the page, aggregating every readable item (case) that carries it."""
    by_key: dict[tuple[str, str], list[Entry]] = {}
    for e in page.entries:
        key = record_key(e)
        if key:
            by_key.setdefault(key, []).append(e)
    live = live_items(hub, readable, list(by_key))
    cases: dict[tuple[str, str], dict[int, str]] = {}
    for key, entries in by_key.items():
        found = {e.id: "Withdrawn" if e.withdrawn else "Active" for e in entries}
        found.update(dict.fromkeys(live[key], "Active"))
        cases[key] = found
    votes = load_votes(hub, principal, [i for found in cases.values() for i in found])
    out = []
    for (kind, value), entries in by_key.items():
        found = cases[kind, value]
        out.append(
            {
                "lastModtimestamp": max(e.second for e in entries),
                "signalType": kind,
                "hashValue": value,
                "hashStatus": "Active" if "Active" in found.values() else "Withdrawn",
                "caseNumbers": {str(i): status for i, status in sorted(found.items())},
                "CSPFeedbacks": _feedbacks([v for i in sorted(found) for v in votes.get(i, [])]),
            }
        )
    return out


def live_items(
    hub: Hub, readable: dict[int, str], keys: list[tuple[str, str]]
) -> dict[tuple[str, str], list[int]]:
    """Live items in readable lists holding exactly each (StopNCII type, hash), from the hub's pool."""
    found: list[tuple[tuple[str, str], np.ndarray]] = []
    with hub.pool.lock:
        for kind in sorted({k for k, _ in keys}):
            values = [v for k, v in keys if k == kind]
            hits = hub.pool.near(_HUB_SIGNAL[kind], values, 0)
            found.extend(((kind, v), ids) for v, (ids, _) in zip(values, hits, strict=True))
        every = np.concatenate([ids for _, ids in found]) if found else np.empty(0, np.int64)
        keep = hub.pool.readable_live(every, set(readable)) if len(every) else np.empty(0, bool)
    out: dict[tuple[str, str], list[int]] = {}
    at = 0
    for key, ids in found:  # one mask for the page, split back per hash
        mask = keep[at : at + len(ids)]
        out[key] = sorted(int(i) for i in ids[mask])
        at += len(ids)
    return out


def _hash(value: object) -> tuple[str, str]:
    """The StopNCII type and canonical value of a hashValue (a PDQ or a video MD5, by its length)."""
    text = value.strip() if isinstance(value, str) else ""
    kind = {64: "ImagePDQ", 32: "VideoMD5"}.get(len(text))
    if kind is None:
        raise Invalid(f"hashValue {str(value)[:80]!r} is neither a PDQ (64 hex) nor an MD5 (32 hex) hash.")
    try:
        return kind, signals.get(_HUB_SIGNAL[kind]).parse(text)
    except signals.SignalError as exc:
        raise Invalid(f"hashValue: {exc}") from None


def submit_feedback(
    hub: Hub, principal: auth.Principal, readable: dict[int, str], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """Map each hash feedback onto hub feedback for every readable live item holding the hash.

    Everything is checked before anything is written: an unknown value or hash fails the request.
    """
    hub.refresh()
    plan: list[tuple[int, str, str, str]] = []
    ignored = 0
    for i, row in enumerate(rows):
        value = row.get("feedbackValue")
        if value not in FEEDBACK_VALUES:
            raise Invalid(f"hashFeedbacks[{i}].feedbackValue must be one of {', '.join(FEEDBACK_VALUES)}.")
        kind, hash_value = _hash(row.get("hashValue"))
        targets = live_items(hub, readable, [(kind, hash_value)])[kind, hash_value]
        if not targets:
            raise NotFound(f"hashFeedbacks[{i}]: no live item you can read has the hash {hash_value}.")
        if value not in FEEDBACK_VERDICTS:
            ignored += 1
            continue
        verdict, reason = FEEDBACK_VERDICTS[value]
        tags = [t for t in row.get("tags") or [] if isinstance(t, str) and t.strip()]
        if tags and verdict == "negative":
            reason = tags[0].strip()[:64]
        note = f"StopNCII {value}" + (f"; tags: {', '.join(tags)}"[:1900] if tags else "")
        plan.extend((item_id, verdict, reason, note) for item_id in targets)
    results = [feedback.give_feedback(hub, principal, i, v, r, n) for i, v, r, n in plan]
    return {"accepted": len(rows) - ignored, "ignored": ignored, "items": results}


def kind_of(value: object) -> str:
    """A signalType or status name; python-threatexchange writes `StopNCIISignalType.ImagePDQ`."""
    return str(value or "").rpartition(".")[2]


def is_gone(record: dict[str, Any]) -> bool:
    return kind_of(record.get("hashStatus")) in _GONE


def _grade_from_tags(record: dict[str, Any]) -> dict[str, str] | None:
    for fb in record.get("CSPFeedbacks") or []:
        for tag in (fb.get("tags") or []) if isinstance(fb, dict) else []:
            scheme, sep, value = str(tag).partition(":")
            if sep and scheme and value:
                return {"scheme": scheme, "value": value}
    return None


def item_of(record: dict[str, Any], default: dict[str, str] | None = None) -> dict[str, Any] | str:
    """The hub item for one hash record, or a message saying why it cannot be one.

    StopNCII records carry no grade: it comes from a `classification` object on the record, else a
    `scheme:value` tag in its CSP feedback (how the stock client can send one), else `default`.
    """
    kind = kind_of(record.get("signalType"))
    if kind not in _HUB_SIGNAL:
        return f"signalType {kind!r} has no hub form (use one of {', '.join(_HUB_SIGNAL)})"
    grade = record.get("classification") or _grade_from_tags(record) or default
    if not grade:
        return "the record has no classification (add a 'scheme:value' tag such as industry:A1)"
    value = record.get("hashValue")
    return {
        "external_id": f"{kind}:{value}",
        "content_type": _CONTENT[kind],
        "classification": grade,
        "fingerprints": {_HUB_SIGNAL[kind]: value},
    }


def submit_hashes(
    hub: Hub, principal: auth.Principal, list_name: str | None, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """Hash records from a contributor become items (all or none), idempotent per (type, hash)."""
    principal.require("contributor")
    if list_name is None:
        writable = sorted(orgs.writable_lists(hub.engine, principal).values())
        if len(writable) != 1:
            raise Invalid(
                f"Organisation {principal.org!r} may write to {len(writable)} lists; submit to one by "
                "its own address, /compat/stopncii/lists/<list>/v1/SubmitHashes."
            )
        list_name = writable[0]
    live = [r for r in records if not is_gone(r)]
    rows = [item_of(r) for r in live]
    bad = [{"index": i, "error": row} for i, row in enumerate(rows) if isinstance(row, str)]
    if bad:
        raise Invalid(
            f"{len(bad)} of {len(rows)} hash records cannot be items; none were written.", rejected=bad
        )
    result = ingest.submit(hub, principal, list_name, rows, actor=f"{principal.org} (StopNCII)")
    return {"accepted": result["accepted"], "items": result["items"], "skipped": len(records) - len(live)}
