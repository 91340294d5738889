"""Hub items as the agent keeps them, parsed from the feed's and snapshot's item shape.

A hub is another organisation's server, so its payloads are checked like any other input: an item
without an id is a protocol error; a fingerprint the agent cannot parse is dropped (and counted) rather
than stopping the whole sync, because the rest of the item still matches on its other fingerprints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hashhub import signals
from hashhub.signals import SignalError

#: Item statuses that still match. Anything else the hub reports (`withdrawn`, ...) is a tombstone.
MATCHING_STATUSES = frozenset({"active", "disputed"})
DELETED = "deleted"


class ItemFormatError(ValueError):
    """A hub sent an item the agent cannot use; the message quotes what is wrong."""


@dataclass(frozen=True, slots=True)
class HubItem:
    item_id: str
    list_name: str | None = None
    contributor: str | None = None
    contributors: tuple[str, ...] = ()
    external_id: str | None = None
    content_type: str | None = None
    classification: dict[str, Any] = field(default_factory=dict)
    verifications: int = 0
    labels: dict[str, Any] = field(default_factory=dict)
    status: str = "active"
    fingerprints: dict[str, str] = field(default_factory=dict)
    #: fingerprints the agent could not parse, as "signal: problem" (kept for the sync report).
    dropped: tuple[str, ...] = ()

    @property
    def matches(self) -> bool:
        return self.status in MATCHING_STATUSES


def _opt_str(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return None if value is None else str(value)


def _verifications(value: object) -> int:
    """The reviewer count: `{"reviewers": 2, ...}` or a bare number; anything else counts as 0."""
    if isinstance(value, dict):
        value = value.get("reviewers", value.get("count", 0))
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0
    try:
        return max(0, int(value))
    except ValueError:
        return 0


def parse_item(payload: object) -> HubItem:
    if not isinstance(payload, dict):
        raise ItemFormatError(f"an item must be a JSON object, got {type(payload).__name__}")
    item_id = payload.get("id")
    if not isinstance(item_id, str | int) or isinstance(item_id, bool) or str(item_id) == "":
        raise ItemFormatError(f"an item has no usable 'id': {str(payload)[:120]}")
    fingerprints: dict[str, str] = {}
    dropped: list[str] = []
    raw_fps = payload.get("fingerprints") or {}
    if not isinstance(raw_fps, dict):
        raise ItemFormatError(f"item {item_id}: 'fingerprints' must be an object of signal -> value")
    for name, value in raw_fps.items():
        try:
            canonical_name, canonical_value = signals.parse(name, value)
        except SignalError as exc:
            dropped.append(str(exc))
            continue
        fingerprints[canonical_name] = canonical_value
    contributor = _opt_str(payload, "contributor")
    listed = payload.get("contributors")
    contributors = tuple(str(c) for c in listed) if isinstance(listed, list) and listed else ()
    if not contributors and contributor:
        contributors = (contributor,)
    classification = payload.get("classification")
    labels = payload.get("labels")
    return HubItem(
        item_id=str(item_id),
        list_name=_opt_str(payload, "list"),
        contributor=contributor,
        contributors=contributors,
        external_id=_opt_str(payload, "external_id"),
        content_type=_opt_str(payload, "content_type"),
        classification=classification if isinstance(classification, dict) else {},
        verifications=_verifications(payload.get("verification", payload.get("verifications"))),
        labels=labels if isinstance(labels, dict) else {},
        status=str(payload.get("status") or "active"),
        fingerprints=fingerprints,
        dropped=tuple(dropped),
    )
