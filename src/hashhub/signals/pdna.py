"""PhotoDNA ("PDNA"): 144-byte vectors compared by Euclidean distance.

PhotoDNA is proprietary: hashhub stores, shares and matches vectors that members compute with their
own licensed tools, and never computes them. Values arrive as hex (288 characters), base64 (192
characters) or 144 comma-separated integers 0-255; the canonical form is lowercase hex.
"""

from __future__ import annotations

import base64
import binascii
import math

from hashhub.signals.base import _HEX, SignalType, _preview

VECTOR_BYTES = 144
#: Euclidean distance at or below which two vectors are taken as the same image (configurable per
#: query); a conservative value for 144-byte PhotoDNA vectors.
MATCH_THRESHOLD = 1800.0


class PdnaSignal(SignalType):
    name = "pdna"
    media = frozenset({"image"})
    index_kind = "vector"
    threshold = MATCH_THRESHOLD
    examples = (bytes(range(144)).hex(), (b"\x10" * 72 + b"\xf0" * 72).hex())

    @classmethod
    def to_bytes(cls, value: object) -> bytes:
        if isinstance(value, bytes | bytearray | memoryview) and len(value) == VECTOR_BYTES:
            return bytes(value)
        text = cls._text(value)
        if "," in text:
            parts = [p.strip() for p in text.split(",")]
            if len(parts) != VECTOR_BYTES:
                raise cls.error(f"expected {VECTOR_BYTES} comma-separated integers, got {len(parts)}")
            try:
                numbers = [int(p) for p in parts]
            except ValueError:
                raise cls.error(f"non-integer element in {_preview(value)}") from None
            if any(not 0 <= n <= 255 for n in numbers):
                raise cls.error("every element must be between 0 and 255")
            return bytes(numbers)
        if len(text) == 2 * VECTOR_BYTES:
            bad = sorted(set(text.lower()) - _HEX)
            if bad:
                raise cls.error(f"non-hexadecimal characters {''.join(bad)!r} in {_preview(value)}")
            return bytes.fromhex(text)
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise cls.error(
                f"expected {VECTOR_BYTES} bytes as hex ({2 * VECTOR_BYTES} characters), base64 or "
                f"comma-separated integers; got {len(text)} characters that are none of these"
            ) from None
        if len(raw) != VECTOR_BYTES:
            raise cls.error(f"expected {VECTOR_BYTES} bytes, base64 value decodes to {len(raw)}")
        return raw

    @classmethod
    def parse(cls, value: object) -> str:
        return cls.to_bytes(value).hex()

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        va, vb = bytes.fromhex(a), bytes.fromhex(b)
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(va, vb, strict=True)))
