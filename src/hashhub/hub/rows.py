"""Parsing a batch of submitted items: shape check, canonical fingerprints and grade, the row's
document part rendered once. Pure Python, no database: `hashhub hub import` runs it in another
thread (or process) while the previous batch is written (`hashhub.hub.ingest`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from hashhub import grading, signals
from hashhub.hub import documents
from hashhub.hub.schemas import ItemIn
from hashhub.signals import HexDigestSignal, SignalType

_ROWS = TypeAdapter(list[ItemIn])
_EMPTY: dict[str, Any] = {}  # never mutated: the default of an absent optional mapping
_UNSEEN = object()  # a memo's miss, where None is a remembered answer


@dataclass(slots=True)
class Row:
    """A validated row: canonical fingerprints and classification, ready to store."""

    index: int
    external_id: str | None
    content_type: str
    scheme: str
    classification: str
    reviewers: int
    verified_by: list[str]
    verified_at: str | None
    labels: dict[str, Any]
    fingerprints: dict[str, str]
    quality: dict[str, int]
    fp_key: int
    #: `fingerprints` as the `items.fingerprints` column stores it (compact JSON, sorted keys), made
    #: when the row is parsed: off the writer's path, which is the import's busier side
    fingerprints_json: str
    #: `shown()` as JSON without its braces, rendered when the row is parsed (see `documents.assemble`)
    body: bytes = b""

    def fields(self, item_id: int, list_name: str, contributor: str) -> dict[str, Any]:
        return {"id": str(item_id), "list": list_name, "contributor": contributor, **self.shown()}

    def shown(self) -> dict[str, Any]:
        """The contributor-given part of the item's document, in document order."""
        fps: dict[str, object] = self.fingerprints  # type: ignore[assignment]
        if not _PRESENTERS.keys().isdisjoint(fps):
            fps = {name: _PRESENTERS[name](v) if name in _PRESENTERS else v for name, v in fps.items()}
        out = {
            "external_id": self.external_id,
            "content_type": self.content_type,
            "classification": {"scheme": self.scheme, "value": self.classification},
            "verification": {
                "reviewers": self.reviewers,
                "verified_by": self.verified_by,
                "verified_at": self.verified_at,
            },
            "labels": self.labels,
            # Shown as each type presents itself (vPDQ: its frame list), as in DESIGN.md's item shape.
            "fingerprints": fps,
        }
        if self.quality:
            out["quality"] = self.quality
        return out


#: `Row`'s fields in constructor order: `Row(*values)` rebuilds a row from them (the importer's
#: parse process hands rows over as such tuples).
ROW_FIELDS = tuple(f.name for f in fields(Row))


def fingerprint_key(fps: dict[str, str]) -> int:
    """A 63-bit digest of the canonical fingerprint set (equal sets, equal keys)."""
    return _key_of_sorted(sorted(fps.items()))


def _key_of_sorted(items: list[tuple[str, str]]) -> int:
    digest = hashlib.blake2b(orjson.dumps(items), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


_LOWER_HEX = re.compile(r"[0-9a-f]*")
Parser = tuple[str, Callable[[object], object]]
#: a parser with the text length that a hex digest type takes as it is when it is lowercase hex
#: (-1 for other types): the plain-row path checks that inline, with no call a fingerprint
PlainParser = tuple[str, Callable[[object], object], int]
_HEX_LENGTHS: dict[str, int] = {}
#: signal name -> `present` for the types whose shown value is not their stored text (vPDQ), filled
#: as names are first parsed: most fingerprints then cost no call at all when a document is rendered.
_PRESENTERS: dict[str, Callable[[str], object]] = {}
_is_lower_hex = _LOWER_HEX.fullmatch
_IDENTITY = SignalType.present.__func__  # type: ignore[attr-defined]


def _parser(name: str) -> Parser:
    """(canonical name, value parser) for a signal name as sent; SignalError for a bad name."""
    signal = signals.get(name)
    if signal.present.__func__ is not _IDENTITY:  # type: ignore[attr-defined]
        _PRESENTERS[signal.name] = signal.present
    if signal.parse.__func__ is not HexDigestSignal.parse.__func__:  # type: ignore[attr-defined]
        return signal.name, signal.parse
    length = _HEX_LENGTHS[signal.name] = signal.hex_length

    def parse(value: object) -> object:
        # Nearly every value arrives canonical already (lowercase, right length): accept it with one
        # regex match; anything else takes the signal's own path, which normalises or explains.
        if type(value) is str and len(value) == length and _LOWER_HEX.fullmatch(value):
            return value
        return signal.parse(value)

    return signal.name, parse


class _BatchCache:
    """Per-batch memo of what rows repeat: signal parsers by name, grades by (scheme, value)."""

    def __init__(self, schemes: dict[str, grading.Scheme]) -> None:
        self.schemes = schemes
        self.parsers: dict[str, Parser] = {}
        self.grades: dict[tuple[str, str], tuple[str, str] | str] = {}
        # The plain-row path's own memos (see `_plain_row`): None where that path must step aside.
        self.plain_parsers: dict[str, PlainParser | None] = {}
        #: (scheme, value) as sent -> canonical (scheme, value, its document JSON)
        self.plain_grades: dict[tuple[str, str], tuple[str, str, bytes] | None] = {}

    def plain_parser(self, name: str) -> PlainParser | None:
        """(canonical name, parser, hex length) for a plain name."""
        if name in self.plain_parsers:
            return self.plain_parsers[name]
        found = None
        if name.isascii():
            with contextlib.suppress(ValueError):  # SignalError is a ValueError
                canonical_name, parse = self.parser(name)
                found = (canonical_name, parse, _HEX_LENGTHS.get(canonical_name, -1))
        self.plain_parsers[name] = found
        return found

    def plain_grade(self, scheme: str, value: str) -> tuple[str, str, bytes] | None:
        """The canonical grade of plain text that names one, with its document JSON, else None."""
        key = (scheme, value)
        if key in self.plain_grades:
            return self.plain_grades[key]
        found = None
        if _text(scheme, 64) and _text(value, 64):
            with contextlib.suppress(ValueError):
                canonical = self.grade(scheme, value)
                found = (*canonical, orjson.dumps({"scheme": canonical[0], "value": canonical[1]}))
        self.plain_grades[key] = found
        return found

    def parser(self, name: str) -> Parser:
        found = self.parsers.get(name)
        if found is None:
            found = self.parsers[name] = _parser(name)  # SignalError is a ValueError
        return found

    def grade(self, scheme: str, value: str) -> tuple[str, str]:
        found = self.grades.get((scheme, value))
        if found is None:
            try:
                found = grading.validate(self.schemes, scheme, value)
            except grading.GradingError as exc:
                found = f"classification: {exc}"
            self.grades[(scheme, value)] = found
        if isinstance(found, str):
            raise ValueError(found)
        return found


def _canonical(index: int, item: ItemIn, cache: _BatchCache) -> Row:
    """A `Row` with canonical fingerprints and grade, or ValueError naming the field that is wrong."""
    fps: dict[str, str] = {}
    for name, value in item["fingerprints"].items():
        canonical_name, parse = cache.parser(name)
        canonical = parse(value)
        if canonical_name in fps:
            raise ValueError(f"fingerprints: {canonical_name} is given twice")
        fps[canonical_name] = canonical if isinstance(canonical, str) else orjson.dumps(canonical).decode()
    quality = {}
    for name, value in item.get("quality", _EMPTY).items():
        if name not in fps:
            raise ValueError(f"quality: {name!r} has no fingerprint in this item")
        if not 0 <= value <= 100:
            raise ValueError(f"quality: {name} must be between 0 and 100, got {value}")
        quality[name] = value
    grade = item["classification"]
    scheme, value = cache.grade(grade["scheme"], grade["value"])
    verification = item.get("verification", _EMPTY)
    verified_at = verification.get("verified_at")
    ordered = dict(sorted(fps.items()))
    try:
        row = Row(
            index=index,
            external_id=item.get("external_id"),
            content_type=item.get("content_type", "image"),
            scheme=scheme,
            classification=value,
            reviewers=verification.get("reviewers", 0),
            verified_by=verification.get("verified_by", []),
            verified_at=documents.iso(verified_at.timestamp()) if verified_at else None,
            labels=item.get("labels", _EMPTY),
            fingerprints=ordered,
            quality=quality,
            fp_key=fingerprint_key(fps),
            fingerprints_json=orjson.dumps(ordered).decode(),
        )
        row.body = orjson.dumps(row.shown())[1:-1]
    except TypeError:  # orjson refuses text JSON cannot carry (a lone surrogate): the sender's mistake
        raise ValueError(_unwritable(item)) from None
    return row


def _unwritable(item: ItemIn) -> str:
    """Which field holds text that cannot be written as UTF-8, in words."""
    field = next((k for k, v in item.items() if _refused(v)), "item")
    return f"{field}: text must be valid Unicode (it holds a lone surrogate code point)"


def _refused(value: object) -> bool:
    try:
        orjson.dumps(value, default=str)
    except TypeError:
        return True
    return False


_ITEM_KEYS = ItemIn.__required_keys__ | ItemIn.__optional_keys__
_VERIFICATION_KEYS = frozenset(("reviewers", "verified_by"))
_CONTENT_TYPES = frozenset(("image", "video"))
_LABEL_TYPES = frozenset((str, float, bool, type(None)))
_INT64 = range(-(2**63), 2**63)


def _text(value: object, longest: int) -> bool:
    """A non-empty ASCII str of at most `longest` characters (pydantic's checks on other text are
    subtler, so such text takes its path)."""
    return type(value) is str and 0 < len(value) <= longest and value.isascii()


def _plain_labels(labels: object) -> bool:
    if type(labels) is not dict or len(labels) > 64:
        return False
    for key, value in labels.items():
        kind = type(value)
        if type(key) is not str or not key.isascii():
            return False
        if kind is str:
            if not value.isascii():
                return False
        elif kind is int:
            if value not in _INT64:
                return False
        elif kind not in _LABEL_TYPES:
            return False
    return True


def _plain_row(index: int, raw: object, cache: _BatchCache) -> Row | None:
    """The `Row` that pydantic's shape check and `_canonical` would make of `raw`, for a row that
    is plainly valid: exact JSON types, ASCII text within its limits, no timestamps to parse or
    quality to check, a known grade. None whenever in any doubt, valid or not; that row then takes
    the full path, which words every rejection, so this path changes speed only, never an outcome
    (tests/hub/test_import_parse.py holds it to that)."""
    if type(raw) is not dict or not _ITEM_KEYS.issuperset(raw) or "quality" in raw:
        return None
    get = raw.get
    external_id = get("external_id")
    if external_id is not None and not _text(external_id, 200):
        return None
    content_type = get("content_type", "image")
    if type(content_type) is not str or content_type not in _CONTENT_TYPES:
        return None
    grade = get("classification")
    if type(grade) is not dict or len(grade) != 2:
        return None
    scheme, value = grade.get("scheme"), grade.get("value")
    if type(scheme) is not str or type(value) is not str:
        return None
    canonical_grade = cache.plain_grades.get((scheme, value), _UNSEEN)  # memo first: no call
    if canonical_grade is _UNSEEN:
        canonical_grade = cache.plain_grade(scheme, value)
    if canonical_grade is None:
        return None
    verification = get("verification", _EMPTY)
    if type(verification) is not dict or not _VERIFICATION_KEYS.issuperset(verification):
        return None
    reviewers = verification.get("reviewers", 0)
    if type(reviewers) is not int or not 0 <= reviewers <= 1000:
        return None
    verified_by = verification.get("verified_by")
    if verified_by is None:
        verified_by = []
    elif _plain_names(verified_by):
        verified_by = list(verified_by)
    else:
        return None
    labels = get("labels", _EMPTY)
    if type(labels) is not dict or (labels and not _plain_labels(labels)):
        return None
    fingerprints = get("fingerprints")
    if type(fingerprints) is not dict or not 0 < len(fingerprints) <= 32:
        return None
    ordered: list[tuple[str, str]] = []
    parsers = cache.plain_parsers
    for name, given in fingerprints.items():
        if type(name) is not str:
            return None
        found = parsers.get(name, _UNSEEN)
        if found is _UNSEEN:
            found = cache.plain_parser(name)
        if found is None:
            return None
        canonical_name, parse, length = found
        if type(given) is str and len(given) == length and _is_lower_hex(given):
            canonical = given  # the common case, as the parser would take it (see `_parser`)
        else:
            try:
                canonical = parse(given)
            except ValueError:
                return None
            if type(canonical) is not str:
                canonical = orjson.dumps(canonical).decode()
        ordered.append((canonical_name, canonical))
    ordered.sort()
    fps = dict(ordered)
    if len(fps) != len(ordered):
        return None  # a name given twice (as two spellings of it)
    fps_json = orjson.dumps(fps)
    scheme, value, grade_json = canonical_grade
    # Empty mappings are the shared, never mutated `_EMPTY`: one object fewer a row to make, to
    # hand over from the parse process and to free.
    labels = dict(labels) if labels else _EMPTY
    row = Row(
        index, external_id, content_type, scheme, value, reviewers, verified_by, None, labels, fps, _EMPTY,
        _key_of_sorted(ordered), fps_json.decode(),
    )  # fmt: skip
    if _PRESENTERS.keys().isdisjoint(fps):
        # `shown()`'s bytes from parts already at hand (1.4 us a row in one dumps of nested
        # dicts, measured; ~0.4 so). The fast-path property test holds it equal to `shown()`.
        row.body = _PLAIN_BODY % (
            b"null" if external_id is None else orjson.dumps(external_id),
            _CONTENT_JSON[content_type],
            grade_json,
            reviewers,
            orjson.dumps(verified_by) if verified_by else b"[]",
            orjson.dumps(labels) if labels else b"{}",
            fps_json,
        )
    else:
        row.body = orjson.dumps(row.shown())[1:-1]
    return row


#: `Row.shown()` as JSON without braces for a plain row (no timestamp, quality or presented type)
_PLAIN_BODY = (
    b'"external_id":%s,"content_type":%s,"classification":%s,'
    b'"verification":{"reviewers":%d,"verified_by":%s,"verified_at":null},"labels":%s,"fingerprints":%s'
)
_CONTENT_JSON = {name: orjson.dumps(name) for name in _CONTENT_TYPES}


def _plain_names(names: object) -> bool:
    return (
        type(names) is list
        and len(names) <= 50
        and all(type(v) is str and len(v) <= 200 and v.isascii() for v in names)
    )


def _validate_shapes(rows: Sequence[object]) -> tuple[list[ItemIn | None], dict[int, str]]:
    """Check every row's shape in one pydantic call; per-row messages for the bad ones.

    One call over the whole batch costs about half of a hand-written per-row check in Python
    (measured: 2.6 against 4.2 us a row), so the shape check stays with pydantic."""
    try:
        return list(_ROWS.validate_python(rows)), {}
    except ValidationError as exc:
        errors: dict[int, str] = {}
        for err in exc.errors():
            index, *where = err["loc"]
            errors.setdefault(int(index), f"{'.'.join(str(p) for p in where) or 'item'}: {err['msg']}")
        good = [r for i, r in enumerate(rows) if i not in errors]
        checked = iter(_ROWS.validate_python(good))
        return [None if i in errors else next(checked) for i in range(len(rows))], errors


def parse_rows(
    rows: Sequence[object], schemes: dict[str, grading.Scheme]
) -> tuple[list[Row], list[dict[str, Any]]]:
    """Validated rows and the rejected ones (`{"index", "error"}`), both in input order.

    Plainly valid rows (the common case) take `_plain_row`; every other row, valid or not, takes
    pydantic's shape check and `_canonical`, which alone word the rejections."""
    cache = _BatchCache(schemes)
    made: list[Row | None] = [_plain_row(i, raw, cache) for i, raw in enumerate(rows)]
    doubtful = [i for i, row in enumerate(made) if row is None]
    if not doubtful:
        return made, []  # type: ignore[return-value]
    shaped, errors = _validate_shapes([rows[i] for i in doubtful])
    rejected = []
    for j, i in enumerate(doubtful):
        try:
            item = shaped[j]
            if item is None:
                raise ValueError(errors[j])
            made[i] = _canonical(i, item, cache)
        except ValueError as exc:
            rejected.append({"index": i, "error": str(exc)})
    return [row for row in made if row is not None], rejected
