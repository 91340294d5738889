"""Fingerprint types behind one interface, and the registry that names them.

    from hashhub import signals
    pdq = signals.get("pdq")
    pdq.parse("F8F8...")        # canonical value, or SignalError
    signals.get("tmk_pdqf")     # any other well-formed name is an opaque exact-match type

Built-in types register through the same `register` call an extension would use; names are unique.
"""

from __future__ import annotations

from hashhub.signals.base import (
    BytesHasher,
    Hashed,
    HexDigestSignal,
    ImageHasher,
    SignalError,
    SignalType,
)
from hashhub.signals.md5 import Md5Signal
from hashhub.signals.opaque import OpaqueSignal, opaque_signal
from hashhub.signals.pdna import PdnaSignal
from hashhub.signals.pdq import PdqSignal
from hashhub.signals.sha1 import Sha1Signal
from hashhub.signals.sha256 import Sha256Signal
from hashhub.signals.vpdq import VpdqSignal

_REGISTRY: dict[str, type[SignalType]] = {}


def register(signal: type[SignalType]) -> type[SignalType]:
    """Add a signal type; a second type under the same name is a programming error."""
    existing = _REGISTRY.get(signal.name)
    if existing is not None and existing is not signal:
        raise ValueError(f"signal type {signal.name!r} is already registered by {existing.__qualname__}")
    _REGISTRY[signal.name] = signal
    return signal


for _builtin in (Md5Signal, Sha1Signal, Sha256Signal, PdqSignal, PdnaSignal, VpdqSignal):
    register(_builtin)


def get(name: str) -> type[SignalType]:
    """The type registered under `name`; other well-formed names are opaque exact-match types."""
    if not isinstance(name, str):
        raise SignalError("signal", f"signal name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    return _REGISTRY.get(key) or opaque_signal(key)


def registered() -> dict[str, type[SignalType]]:
    """The named (non-opaque) signal types, by name."""
    return dict(_REGISTRY)


def parse(name: str, value: object) -> tuple[str, str]:
    """(canonical name, canonical value) for one fingerprint, or SignalError."""
    signal = get(name)
    return signal.name, signal.parse(value)


__all__ = [
    "BytesHasher",
    "Hashed",
    "HexDigestSignal",
    "ImageHasher",
    "Md5Signal",
    "OpaqueSignal",
    "PdnaSignal",
    "PdqSignal",
    "Sha1Signal",
    "Sha256Signal",
    "SignalError",
    "SignalType",
    "get",
    "parse",
    "register",
    "registered",
]
