"""PDQ: Meta's 256-bit perceptual image hash, compared by Hamming distance.

Canonical form: 64 lowercase hexadecimal characters. Two hashes match at distance <= 31; a hash
whose quality is below 50 describes an image too flat to fingerprint and is treated as "no hash".
"""

from __future__ import annotations

from hashhub.signals.base import HexDigestSignal

MATCH_THRESHOLD = 31
MIN_QUALITY = 50
BITS = 256


class PdqSignal(HexDigestSignal):
    name = "pdq"
    media = frozenset({"image"})
    index_kind = "hamming"
    threshold = MATCH_THRESHOLD
    hex_length = 64
    examples = (
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
        "6526f4b36748a99e9ce60e4b212171b159dead4eac31563ceb16a51356eb198d",
    )

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return (int(a, 16) ^ int(b, 16)).bit_count()

    @classmethod
    def parse_quality(cls, value: object) -> int:
        """Quality 0-100 (an int, or a string of one)."""
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise cls.error(f"quality must be an integer 0-100, got {type(value).__name__}")
        try:
            quality = int(value)
        except ValueError:
            raise cls.error(f"quality must be an integer 0-100, got {value!r}") from None
        if not 0 <= quality <= 100:
            raise cls.error(f"quality must be between 0 and 100, got {quality}")
        return quality

    @classmethod
    def usable(cls, quality: int | None) -> bool:
        return quality is None or quality >= MIN_QUALITY
