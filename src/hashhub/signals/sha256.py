"""SHA-256 of a file's bytes: exact matching."""

import hashlib

from hashhub.signals.base import BytesHasher, HexDigestSignal


class Sha256Signal(HexDigestSignal, BytesHasher):
    name = "sha256"
    media = frozenset({"image", "video"})
    hex_length = 64
    examples = ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",)

    @classmethod
    def new_hasher(cls):
        return hashlib.sha256()
