"""Opaque signals: any other fingerprint type (TMK+PDQF, vendor hashes), stored and matched exactly.

hashhub does not know their structure, so it keeps the value as given (trimmed) and matches on
equality. The type's name comes from the data, e.g. `tmk_pdqf`.
"""

from __future__ import annotations

import re
from functools import cache

from hashhub.signals.base import SignalError, SignalType, _preview

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_LENGTH = 65536


class OpaqueSignal(SignalType):
    name = "opaque"
    media = frozenset({"image", "video"})
    examples = ("vendor-hash:0f1e2d3c", "AAECAwQFBgc=")

    @classmethod
    def parse(cls, value: object) -> str:
        text = cls._text(value)
        if len(text) > MAX_LENGTH:
            raise cls.error(f"value is {len(text)} characters long; the limit is {MAX_LENGTH}")
        if any(not ch.isprintable() or ch.isspace() for ch in text):
            raise cls.error(f"value contains whitespace or control characters: {_preview(value)}")
        return text


@cache
def opaque_signal(name: str) -> type[OpaqueSignal]:
    """The opaque exact-match type for `name` (one class per name, so identity checks work)."""
    if not NAME_PATTERN.match(name):
        raise SignalError(
            name or "signal", "signal names are 1-64 characters: a lowercase letter, then a-z, 0-9 or _"
        )
    return type(f"Opaque_{name}", (OpaqueSignal,), {"name": name})
