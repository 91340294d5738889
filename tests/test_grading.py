"""Grading schemes are data: built-ins load from JSON, values validate case-insensitively."""

from __future__ import annotations

import pytest

from hashhub import grading
from hashhub.grading import GradingError, Scheme


def test_builtin_schemes() -> None:
    schemes = grading.builtin_schemes()
    assert schemes["industry"].values == ("A1", "A2", "B1", "B2")
    assert schemes["uk"].values == ("A", "B", "C")
    assert schemes["interpol"].values == ("baseline",)


def test_validate_canonicalises_case() -> None:
    schemes = grading.builtin_schemes()
    assert grading.validate(schemes, "industry", " a1 ") == ("industry", "A1")
    assert grading.validate(schemes, "interpol", "BASELINE") == ("interpol", "baseline")


@pytest.mark.parametrize(
    ("scheme", "value", "fragment"),
    [
        ("industry", "C3", "not a value of grading scheme 'industry'"),
        ("nope", "A", "unknown grading scheme"),
        ("uk", "", "non-empty string"),
        ("uk", 3, "non-empty string"),
    ],
)
def test_bad_classifications_say_why(scheme: str, value: object, fragment: str) -> None:
    with pytest.raises(GradingError, match=fragment):
        grading.validate(grading.builtin_schemes(), scheme, value)


def test_admin_defined_scheme_round_trips() -> None:
    scheme = Scheme.from_dict("ai-generated", {"description": "x", "values": ["synthetic", "edited"]})
    assert scheme.validate("Synthetic") == "synthetic"
    assert Scheme.from_dict("ai-generated", scheme.to_dict()) == scheme
    with pytest.raises(GradingError, match="twice"):
        Scheme.from_dict("dup", {"values": ["a", "A"]})
    with pytest.raises(GradingError, match="at least one value"):
        Scheme.from_dict("empty", {"values": []})
