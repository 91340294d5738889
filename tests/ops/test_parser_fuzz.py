"""Hypothesis on the import and policy parsers: any input gives items or a clear error, never a crash.

Fingerprint parsing is covered in tests/test_signals.py. Here: CSV and NDJSON import files (through
the hub's real importer), NCMEC XML, StopNCII JSON and the agent's policy TOML.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashhub.agent.policy import Policy, PolicyError
from hashhub.hub import importer, orgs
from hashhub.hub.core import Hub
from hashhub.hub.errors import HubError
from hashhub.hub.settings import HubSettings
from hashhub.interchange import ncmec_xml, stopncii_json
from hashhub.interchange.errors import FormatError

FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
PDQ = "a5" * 32
SIGNALS = ["pdq", "md5", "sha256", "x"]
CSV_HEADERS = ["pdq", "md5", "scheme", "classification", "reviewers", "x", ""]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
# Item-shaped JSON: the keys the importer looks at, with values of any type.
item_docs = st.fixed_dictionaries(
    {},
    optional={
        "fingerprints": st.dictionaries(
            st.sampled_from(["pdq", "md5", "sha256", "x"]), json_values, max_size=3
        )
        | json_values,
        "classification": st.fixed_dictionaries({"scheme": json_values, "value": json_values}) | json_values,
        "content_type": st.sampled_from(["image", "video"]) | json_values,
        "external_id": json_values,
        "verification": json_values,
        "list": json_values,
    },
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    db = tmp_path_factory.mktemp("parsers") / "hub.db"
    h = Hub(HubSettings(db=f"sqlite:///{db}"))
    orgs.create_org(h.engine, "contrib", ["contributor"])
    orgs.create_list(h.engine, "verified", write=["contrib"])
    yield h
    h.close()


def _import(hub: Hub, tmp: Path, name: str, data: bytes) -> importer.ImportReport | None:
    path = tmp / name
    path.write_bytes(data)
    try:
        return importer.import_file(hub, path, "contrib", "verified")
    except HubError as exc:  # a clear refusal of the whole file is fine; anything else is a bug
        assert exc.message
        return None


@FUZZ
@given(docs=st.lists(item_docs | json_values, max_size=6))
def test_ndjson_import_accounts_for_every_line(hub: Hub, tmp_path: Path, docs: list[object]) -> None:
    lines = [json.dumps(d) for d in docs] + ['{"fingerprints": {"pdq": "' + PDQ + '"}']  # last: cut short
    report = _import(hub, tmp_path, "rows.ndjson", "\n".join(lines).encode())
    assert report is not None
    assert report.rows == len(lines)
    assert report.created + report.updated + report.unchanged + report.rejected_count == report.rows
    assert all(r["error"] for r in report.rejected)


@FUZZ
@given(data=st.binary(max_size=400))
def test_csv_and_ndjson_import_of_arbitrary_bytes_never_crash(hub: Hub, tmp_path: Path, data: bytes) -> None:
    for name in ("rows.csv", "rows.ndjson"):
        report = _import(hub, tmp_path, name, data)
        if report is not None:
            assert report.created + report.updated + report.unchanged + report.rejected_count == report.rows


csv_cells = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)


@FUZZ
@given(
    header=st.lists(
        st.sampled_from(["pdq", "md5", "scheme", "classification", "reviewers", "x", ""]), max_size=5
    ),
    rows=st.lists(st.lists(csv_cells, max_size=6), max_size=5),
)
def test_csv_rows_of_any_shape_are_imported_or_rejected_by_row(
    hub: Hub, tmp_path: Path, header: list[str], rows: list[list[str]]
) -> None:
    import csv

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    _import(hub, tmp_path, "rows.csv", out.getvalue().encode())


xml_text = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=70)


@st.composite
def ncmec_documents(draw: st.DrawFn) -> bytes:
    """XML shaped like an NCMEC answer, with any text and any nesting of the elements it names."""
    tags = ["image", "video", "id", "classification", "fingerprints", "MD5", "PDQ", "images", "deletedImage"]

    def element(depth: int) -> str:
        tag = draw(st.sampled_from(tags))
        children = "".join(element(depth + 1) for _ in range(draw(st.integers(0, 3 if depth < 3 else 0))))
        text = draw(xml_text).replace("&", "&amp;").replace("<", "&lt;")
        return f"<{tag}>{text}{children}</{tag}>"

    body = "".join(element(1) for _ in range(draw(st.integers(0, 4))))
    return f'<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">{body}</queryResult>'.encode()


@FUZZ
@given(data=ncmec_documents() | st.binary(max_size=300))
def test_ncmec_xml_gives_items_or_a_format_error(data: bytes) -> None:
    try:
        items = list(ncmec_xml.read(io.BytesIO(data)))
    except FormatError as exc:
        assert "XML" in exc.message
        return
    for item in items:
        assert item["content_type"] in ("image", "video")
        assert all(isinstance(v, str) for v in item["fingerprints"].values())


def test_ncmec_xml_refuses_entity_expansion_bombs() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><q>&b;</q>'
    with pytest.raises(FormatError):
        list(ncmec_xml.read(io.BytesIO(bomb)))


@FUZZ
@given(body=json_values | st.fixed_dictionaries({"hashRecords": st.lists(json_values, max_size=5)}))
def test_stopncii_json_gives_items_or_row_errors_or_a_format_error(body: object) -> None:
    try:
        rows = list(stopncii_json.read(io.BytesIO(json.dumps(body).encode())))
    except FormatError as exc:
        assert exc.message
        return
    assert all(isinstance(r, str | dict) for r in rows)


toml_keys = st.sampled_from(["defaults", "rules", "variants", "action", "name", "max_distance", "x"])
toml_scalars = st.sampled_from(
    ['"review"', '"block"', '"allow"', "1", "-3", "true", '"x"', "[]", "{}", "1.5"]
)


@st.composite
def policy_texts(draw: st.DrawFn) -> str:
    """TOML-ish text built from the policy's own vocabulary, tables and arrays of tables."""
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["table", "array", "pair", "junk"]))
        key = draw(toml_keys)
        if kind == "table":
            lines.append(f"[{key}]")
        elif kind == "array":
            lines.append(f"[[{key}]]")
        elif kind == "pair":
            lines.append(f"{key} = {draw(toml_scalars)}")
        else:
            lines.append(draw(st.text(max_size=15)))
    return "\n".join(lines)


@FUZZ
@given(text=policy_texts())
def test_policy_toml_gives_a_policy_or_a_policy_error(text: str) -> None:
    try:
        policy = Policy.from_toml(text, source="fuzz.toml")
    except PolicyError as exc:
        assert "fuzz.toml" in str(exc)
        return
    assert policy.describe()["source"] == "fuzz.toml"
