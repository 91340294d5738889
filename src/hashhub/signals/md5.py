"""MD5 of a file's bytes: exact matching, the most common hash in the field's lists."""

import hashlib

from hashhub.signals.base import BytesHasher, HexDigestSignal


class Md5Signal(HexDigestSignal, BytesHasher):
    name = "md5"
    media = frozenset({"image", "video"})
    hex_length = 32
    examples = ("d41d8cd98f00b204e9800998ecf8427e", "ea009b099b8451639d62d722fb8645fb")

    @classmethod
    def new_hasher(cls):
        return hashlib.md5(usedforsecurity=False)
