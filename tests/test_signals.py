"""Signal types: parsing, canonical forms, distances and clear errors for bad values."""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashhub import signals
from hashhub.signals import SignalError

NAMED = sorted(signals.registered())


@pytest.mark.parametrize("name", NAMED)
def test_examples_are_canonical_and_match_themselves(name: str) -> None:
    signal = signals.get(name)
    assert signal.examples, f"{name} gives no examples"
    for example in signal.examples:
        assert signal.parse(example) == example
        assert signal.distance(example, example) == 0
        assert signal.matches(example, example)


@pytest.mark.parametrize(("name", "length"), [("md5", 32), ("sha1", 40), ("sha256", 64), ("pdq", 64)])
def test_hex_types_lowercase_and_strip(name: str, length: int) -> None:
    value = "AbC0" * (length // 4)
    assert signals.get(name).parse(f"  {value}\n") == value.lower()


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("md5", "abc", "expected 32 hexadecimal characters, got 3"),
        ("md5", "g" * 32, "non-hexadecimal characters 'g'"),
        ("sha1", "", "empty"),
        ("sha256", 12345, "expected a string, got int"),
        ("pdq", "f" * 63, "expected 64 hexadecimal characters, got 63"),
        ("pdna", "00" * 143, "got 286 characters"),
        ("pdna", ",".join(["300"] * 144), "between 0 and 255"),
        ("pdna", ",".join(["1"] * 10), "expected 144 comma-separated integers, got 10"),
        ("tmk_pdqf", "has space", "whitespace"),
    ],
)
def test_bad_values_name_the_signal_and_the_problem(name: str, value: object, fragment: str) -> None:
    with pytest.raises(SignalError) as caught:
        signals.get(name).parse(value)
    assert str(caught.value).startswith(f"{name}: ")
    assert fragment in str(caught.value)


def test_pdq_distance_and_threshold() -> None:
    pdq = signals.get("pdq")
    a = "0" * 64
    b = "f" * 8 + "0" * 56  # 32 bits differ
    assert pdq.distance(a, b) == 32
    assert not pdq.matches(a, b)
    assert pdq.matches(a, "f" * 7 + "e" + "0" * 56)  # 31 bits
    assert pdq.threshold == 31


def test_pdq_quality_range() -> None:
    pdq = signals.get("pdq")
    assert pdq.parse_quality("80") == 80
    with pytest.raises(SignalError, match="between 0 and 100"):
        pdq.parse_quality(101)
    assert not pdq.usable(49)
    assert pdq.usable(50)


def test_pdna_accepts_hex_base64_and_integer_lists() -> None:
    pdna = signals.get("pdna")
    raw = bytes(range(144))
    canonical = raw.hex()
    assert pdna.parse(raw.hex().upper()) == canonical
    assert pdna.parse(base64.b64encode(raw).decode()) == canonical
    assert pdna.parse(",".join(str(b) for b in raw)) == canonical
    other = bytes([b ^ 1 for b in raw])
    assert pdna.distance(canonical, other.hex()) == pytest.approx(12.0)


def test_unknown_names_are_opaque_exact_types() -> None:
    tmk = signals.get("TMK_PDQF")
    assert tmk.name == "tmk_pdqf"
    assert tmk is signals.get("tmk_pdqf")
    assert tmk.index_kind == "exact"
    assert tmk.parse(" abc123== ") == "abc123=="
    with pytest.raises(SignalError, match="signal names"):
        signals.get("bad name!")


def test_registering_a_second_type_under_a_taken_name_fails() -> None:
    class Fake(signals.Md5Signal):
        pass

    with pytest.raises(ValueError, match="already registered"):
        signals.register(Fake)


@given(st.binary(min_size=32, max_size=32))
def test_pdq_hex_round_trip(raw: bytes) -> None:
    pdq = signals.get("pdq")
    assert pdq.parse(raw.hex().upper()) == raw.hex()


@given(st.binary(min_size=144, max_size=144))
def test_pdna_round_trip_all_encodings(raw: bytes) -> None:
    pdna = signals.get("pdna")
    for encoded in (raw.hex(), base64.b64encode(raw).decode(), ",".join(map(str, raw))):
        assert pdna.parse(encoded) == raw.hex()


@given(st.sampled_from(NAMED), st.one_of(st.text(), st.binary(), st.integers(), st.none()))
def test_garbage_raises_signal_error_only(name: str, garbage: object) -> None:
    signal = signals.get(name)
    try:
        canonical = signal.parse(garbage)
    except SignalError:
        return
    # Whatever is accepted must be a fixed point of parse.
    assert signal.parse(canonical) == canonical


@given(st.text(alphabet=string.hexdigits, min_size=32, max_size=32))
def test_md5_accepts_any_hex_case(value: str) -> None:
    assert signals.get("md5").parse(value) == value.lower()


@pytest.mark.parametrize("name", NAMED)
def test_presented_values_parse_back(name: str) -> None:
    signal = signals.get(name)
    for example in signal.examples:
        assert signal.parse(signal.present(example)) == example
