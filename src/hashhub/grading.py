"""Grading schemes as data, not code.

The built-in schemes (industry A1/A2/B1/B2, UK A/B/C, the Interpol baseline flag) are read from
`data/grading_schemes.json`; a hub keeps them in a table seeded from here, and an admin can add more
with the same shape. Code never branches on a scheme's name or values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any


class GradingError(ValueError):
    """A classification or scheme definition is not acceptable; the message says why."""


@dataclass(frozen=True, slots=True)
class Scheme:
    name: str
    values: tuple[str, ...]
    description: str = ""
    value_descriptions: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def validate(self, value: object) -> str:
        """The canonical spelling of `value` in this scheme (case-insensitive), or GradingError."""
        if not isinstance(value, str) or not value.strip():
            raise GradingError(f"classification in scheme {self.name!r} must be a non-empty string")
        wanted = value.strip().casefold()
        for known in self.values:
            if known.casefold() == wanted:
                return known
        raise GradingError(
            f"{value!r} is not a value of grading scheme {self.name!r} "
            f"(expected one of {', '.join(self.values)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "values": {v: self.value_descriptions.get(v, "") for v in self.values},
        }

    @classmethod
    def from_dict(cls, name: str, data: object) -> Scheme:
        """Build a scheme from `{"description": ..., "values": {VALUE: description} | [VALUE, ...]}`."""
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise GradingError("a grading scheme needs a name of 1-64 characters")
        if not isinstance(data, dict):
            raise GradingError(f"grading scheme {name!r} must be an object with 'values'")
        raw = data.get("values")
        if isinstance(raw, list):
            raw = {v: "" for v in raw}
        if not isinstance(raw, dict) or not raw:
            raise GradingError(f"grading scheme {name!r} needs at least one value")
        values: dict[str, str] = {}
        for value, text in raw.items():
            if not isinstance(value, str) or not value.strip() or len(value) > 64:
                raise GradingError(f"grading scheme {name!r} has an empty or over-long value")
            if value.strip().casefold() in {v.casefold() for v in values}:
                raise GradingError(f"grading scheme {name!r} lists {value!r} twice")
            values[value.strip()] = str(text or "")
        description = data.get("description", "")
        return cls(
            name=name.strip(),
            values=tuple(values),
            description=str(description or ""),
            value_descriptions=MappingProxyType(values),
        )


@cache
def builtin_schemes() -> MappingProxyType[str, Scheme]:
    """The schemes every hub starts with, by name."""
    text = resources.files("hashhub.data").joinpath("grading_schemes.json").read_text("utf-8")
    return MappingProxyType({name: Scheme.from_dict(name, body) for name, body in json.loads(text).items()})


def validate(
    schemes: dict[str, Scheme] | MappingProxyType[str, Scheme], scheme: object, value: object
) -> tuple[str, str]:
    """(scheme name, canonical value) for a classification, or GradingError naming what is wrong."""
    if not isinstance(scheme, str) or scheme not in schemes:
        raise GradingError(f"unknown grading scheme {scheme!r} (known: {', '.join(sorted(schemes))})")
    return scheme, schemes[scheme].validate(value)
