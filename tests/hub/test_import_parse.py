"""`parse_rows`' plain-row fast path (what nearly every imported or submitted row takes) must be a
shortcut only: for any batch it gives the rows, documents, row numbers and rejection reasons the
full path (pydantic's shape check, then the canonical form) gives alone.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.hub.conftest import World, item

from hashhub import grading
from hashhub.hub import rows
from hashhub.hub.rows import Row

SCHEMES = dict(grading.builtin_schemes())


def full_path(batch: list[Any]) -> tuple[list[Row], list[dict[str, Any]]]:
    """What `parse_rows` made of every row before it had a fast path."""
    shaped, errors = rows._validate_shapes(batch)
    cache = rows._BatchCache(SCHEMES)
    good, rejected = [], []
    for i, shape in enumerate(shaped):
        try:
            if shape is None:
                raise ValueError(errors[i])
            good.append(rows._canonical(i, shape, cache))
        except ValueError as exc:
            rejected.append({"index": i, "error": str(exc)})
    return good, rejected


def _some(*values: object) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


_text = st.one_of(st.text(max_size=6), _some("", "x" * 64, "x" * 65, "x" * 200, "x" * 201, "é", "\ud800"))
_label_values = st.one_of(
    _text,
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    _some([], {}, [1]),
)
_fingerprints = st.dictionaries(
    _some("md5", "pdq", "MD5", " pdq ", "sha1", "nosuch", "bad name!", "vpdq"),
    st.one_of(
        _some(
            item(1)["fingerprints"]["md5"],
            item(1)["fingerprints"]["md5"].upper(),
            item(2)["fingerprints"]["pdq"],
            item(2)["fingerprints"]["pdq"][:-1] + "g",
            "ab" * 20,
            None,
            7,
            [],
        ),
        _text,
    ),
    max_size=3,
)
_fields: dict[str, st.SearchStrategy[Any]] = {
    "external_id": st.one_of(st.none(), _text, _some(5, True)),
    "content_type": _some("image", "video", "audio", "IMAGE", None, 1),
    "classification": st.one_of(
        st.fixed_dictionaries(
            {
                "scheme": _some("industry", "uk", "nosuch", "", 3),
                "value": _some("A1", "a1", "B2", "A", "Z9", " A1 ", "", None),
            }
        ),
        _some({"scheme": "industry"}, {"scheme": "industry", "value": "A1", "more": 1}, "A1", None),
    ),
    "verification": st.one_of(
        st.dictionaries(
            _some("reviewers", "verified_by", "verified_at", "other"),
            st.one_of(
                _some(0, 1, 1000, 1001, -1, True, "2", 2.0, None, "2026-01-02T03:04:05Z", "yesterday"),
                st.lists(_text, max_size=3),
                _some(["x"] * 51),
            ),
            max_size=3,
        ),
        _some(None, [], "x"),
    ),
    "labels": st.one_of(
        st.dictionaries(_text, _label_values, max_size=3), _some(None, [], {str(n): n for n in range(65)})
    ),
    "fingerprints": st.one_of(_fingerprints, _some(None, "md5", {str(n): "x" for n in range(33)})),
    "quality": st.one_of(
        st.dictionaries(_some("pdq", "md5", "sha1"), _some(0, 100, 101, -1, True, "90", 50.0), max_size=2),
        _some(None, [], {}),
    ),
    "unknown": _some(1, None, "x"),
}


@st.composite
def _rows(draw: st.DrawFn) -> Any:
    """A valid item with a few of its fields changed, dropped or added; now and then not an object."""
    if draw(st.integers(0, 30)) == 0:
        return draw(_some([], "item", None, 3))
    row = item(draw(st.integers(0, 1000)), external=draw(st.booleans()))
    for name in draw(st.lists(st.sampled_from(sorted(_fields)), max_size=3, unique=True)):
        if draw(st.integers(0, 4)) == 0:
            row.pop(name, None)
        else:
            row[name] = draw(_fields[name])
    return row


@settings(max_examples=400, deadline=None)
@given(batch=st.lists(_rows(), min_size=1, max_size=6))
def test_the_fast_path_changes_no_outcome(batch: list[Any]) -> None:
    assert rows.parse_rows(batch, SCHEMES) == full_path(batch)


def test_plain_rows_take_the_fast_path_and_the_others_do_not() -> None:
    """The shortcut is taken where it pays: plain rows, whatever their valid variations."""
    cache = rows._BatchCache(SCHEMES)
    plain = [
        item(1),
        {**item(2), "content_type": "video", "labels": {"case": 7, "ok": True, "w": 0.5, "n": None}},
        {**item(3), "verification": {"reviewers": 0, "verified_by": ["iwf"]}},
        {**item(4), "classification": {"scheme": "uk", "value": "a"}, "fingerprints": {"MD5": "AB" * 16}},
    ]
    assert all(rows._plain_row(i, r, cache) is not None for i, r in enumerate(plain))
    doubtful = [
        {**item(5), "verification": {"reviewers": 1, "verified_at": "2026-01-02T03:04:05Z"}},
        {**item(6), "quality": {"pdq": 90}},
        {**item(7), "external_id": "é"},
        {**item(8), "classification": {"scheme": "industry", "value": "Z9"}},
    ]
    assert all(rows._plain_row(i, r, cache) is None for i, r in enumerate(doubtful))


def test_text_json_cannot_carry_is_a_rejected_row_not_a_server_error(world: World) -> None:
    """A label holding a lone surrogate (which `\\ud800` in a JSON string decodes to) passed the
    shape check and made rendering the document raise TypeError: a 500 for the whole batch."""
    rows = [item(1), {**item(2), "labels": {"note": "\ud800"}}, item(3)]
    body = json.dumps({"list": "verified", "items": rows}).encode()  # ASCII, with the \ud800 escape
    client = world.client("iwf")
    headers = {"Content-Type": "application/json"}
    refused = client.post("/api/v1/items", content=body, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["rejected"] == [
        {"index": 1, "error": "labels: text must be valid Unicode (it holds a lone surrogate code point)"}
    ]
    partial = client.post("/api/v1/items", params={"partial": "true"}, content=body, headers=headers)
    assert partial.status_code == 200
    assert [r["index"] for r in partial.json()["items"]] == [0, 2]
