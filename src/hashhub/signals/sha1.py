"""SHA-1 of a file's bytes: exact matching."""

import hashlib

from hashhub.signals.base import BytesHasher, HexDigestSignal


class Sha1Signal(HexDigestSignal, BytesHasher):
    name = "sha1"
    media = frozenset({"image", "video"})
    hex_length = 40
    examples = ("da39a3ee5e6b4b0d3255bfef95601890afd80709",)

    @classmethod
    def new_hasher(cls):
        return hashlib.sha1(usedforsecurity=False)
