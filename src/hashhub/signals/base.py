"""The one interface every fingerprint type implements.

A signal type is a small class: its name, the media it applies to, how to parse and canonicalise a
value, how far apart two values are and the default distance at which they match. Abilities that only
some types have (hash raw bytes, hash a decoded image) are mixins, so the rest of the system asks
"can this type hash bytes?" instead of branching on a type's name.

Errors: every bad value raises `SignalError` (a `ValueError`) whose message names the signal type and
says what is wrong with the value (length, characters, range).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    from PIL import Image

IndexKind = Literal["exact", "hamming", "vector"]

_HEX = frozenset("0123456789abcdef")


class SignalError(ValueError):
    """A fingerprint value (or signal name) is not acceptable; the message says why."""

    def __init__(self, signal: str, problem: str) -> None:
        self.signal = signal
        self.problem = problem
        super().__init__(f"{signal}: {problem}")


def _preview(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SignalType(abc.ABC):
    """A fingerprint type. Subclasses set the class variables and implement `parse` and `distance`."""

    name: ClassVar[str]
    #: media kinds this signal describes ("image", "video"); used to pick hashers for a file.
    media: ClassVar[frozenset[str]]
    #: which kind of index searches it: exact membership, Hamming radius or vector distance.
    index_kind: ClassVar[IndexKind] = "exact"
    #: distance at or below which two values match (0 for exact types).
    threshold: ClassVar[float] = 0
    #: valid example values in canonical form (generated tests run over them).
    examples: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def error(cls, problem: str) -> SignalError:
        return SignalError(cls.name, problem)

    @classmethod
    @abc.abstractmethod
    def parse(cls, value: object) -> str:
        """Return the canonical text form of `value`, or raise `SignalError`."""

    @classmethod
    def usable(cls, quality: int | None) -> bool:
        """Whether a computed value of this quality is worth keeping (types with a quality floor
        override this)."""
        return True

    @classmethod
    def present(cls, canonical: str) -> object:
        """The JSON value shown in items, the feed and the snapshot for a stored canonical value.

        Most types show their canonical text; structured types (vPDQ's frame list) override this.
        `parse(present(v)) == v` always holds.
        """
        return canonical

    @classmethod
    def distance(cls, a: str, b: str) -> float:
        """Distance between two canonical values (0 = identical). Exact types: 0 or 1."""
        return 0 if a == b else 1

    @classmethod
    def matches(cls, a: str, b: str, threshold: float | None = None) -> bool:
        limit = cls.threshold if threshold is None else threshold
        return cls.distance(a, b) <= limit

    @classmethod
    def _text(cls, value: object) -> str:
        if isinstance(value, bytes):
            try:
                value = value.decode("ascii")
            except UnicodeDecodeError:
                raise cls.error("value is not ASCII text") from None
        if not isinstance(value, str):
            raise cls.error(f"expected a string, got {type(value).__name__}")
        text = value.strip()
        if not text:
            raise cls.error("value is empty")
        return text


class HexDigestSignal(SignalType):
    """A fixed-length hexadecimal value compared for equality (MD5, SHA-1, SHA-256 of the bytes)."""

    hex_length: ClassVar[int]

    @classmethod
    def parse(cls, value: object) -> str:
        text = cls._text(value).lower()
        if len(text) != cls.hex_length:
            raise cls.error(
                f"expected {cls.hex_length} hexadecimal characters, got {len(text)} in {_preview(value)}"
            )
        bad = sorted(set(text) - _HEX)
        if bad:
            raise cls.error(f"non-hexadecimal characters {''.join(bad)!r} in {_preview(value)}")
        return text


@dataclass(frozen=True, slots=True)
class Hashed:
    """A fingerprint computed from media. `quality` is 0-100 where the type has one, else None."""

    signal: str
    value: str | None
    quality: int | None = None


class BytesHasher(abc.ABC):
    """Mixin: the signal can be computed from a file's raw bytes, incrementally."""

    @classmethod
    @abc.abstractmethod
    def new_hasher(cls):
        """A fresh object with `update(bytes)` and `hexdigest()`."""


class ImageHasher(abc.ABC):
    """Mixin: the signal can be computed from a decoded image."""

    #: How to decode for this signal: "RGB", or "L" when luminance is all it reads.
    decode_mode: ClassVar[str] = "RGB"
    #: The shorter side (px) the signal needs; None decodes at full size.
    decode_target: ClassVar[int | None] = None

    @classmethod
    @abc.abstractmethod
    def hash_image(cls, image: Image.Image) -> Hashed:
        """Fingerprint of an RGB image (already EXIF-transposed)."""
