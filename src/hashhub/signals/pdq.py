"""PDQ: Meta's 256-bit perceptual image hash, compared by Hamming distance.

Canonical form: 64 lowercase hexadecimal characters. Two hashes match at distance <= 31; a hash
whose quality is below 50 describes an image too flat to fingerprint and is treated as "no hash".

Computing: `hash_image` always returns the hash it computed with its quality (even below 50), so
tools that show quality can; it is `hashhub.hashing` (and anything that stores or matches) that
drops hashes `usable` rejects. The algorithm itself is in `pdq_hasher`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from hashhub.signals import pdq_hasher
from hashhub.signals.base import Hashed, HexDigestSignal, ImageHasher

if TYPE_CHECKING:
    from PIL import Image

MATCH_THRESHOLD = 31
MIN_QUALITY = 50
BITS = 256


class PdqSignal(HexDigestSignal, ImageHasher):
    name = "pdq"
    media = frozenset({"image"})
    index_kind = "hamming"
    threshold = MATCH_THRESHOLD
    hex_length = 64
    examples = (
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
        "6526f4b36748a99e9ce60e4b212171b159dead4eac31563ceb16a51356eb198d",
    )
    #: How hashing.py should decode for this signal. RGB, like the reference: from the same pixels
    #: the hash is then bit-identical to Meta's C++ on the whole corpus ("L", the JPEG's own luma,
    #: is ~25% faster but moves 2 bits on one image in five). A decode whose shorter side stays
    #: >= 384 px (JPEG DCT scaling) measured within 4 bits, median 0, of the full-size hash.
    decode_mode: ClassVar[str] = "RGB"
    decode_target: ClassVar[int | None] = 384

    @classmethod
    def hash_image(cls, image: Image.Image) -> Hashed:
        """PDQ of an "L" or RGB image; a reduced decode carries its full size in `image.info`."""
        from hashhub.media.image import FULL_SIZE_KEY

        if image.mode == "L":
            luma = np.asarray(image)
        else:
            luma = pdq_hasher.luma_from_rgb(np.asarray(image.convert("RGB")))
        full_size = image.info.get(FULL_SIZE_KEY)
        full_shape = (full_size[1], full_size[0]) if full_size else None
        result = pdq_hasher.hash_luma(luma, full_shape)
        return Hashed(cls.name, result.hash, result.quality)

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
