"""Fingerprint one file: the entry point the hub, the agent and `hashhub hash` share.

    from hashhub.hashing import hash_path, hash_bytes
    result = hash_path("photo.jpg")                  # md5, sha1, sha256 and pdq
    result.hashes   # {"md5": "...", "sha1": "...", "sha256": "...", "pdq": "..."}
    result.quality  # {"pdq": 87}
    result.error    # None, or why a media signal could not be computed ("file is empty", ...)

Which signals a name stands for comes from the registry: types with the `BytesHasher` mixin digest
the raw bytes, types with `ImageHasher` read the decoded image, which is decoded once for all of
them, and types with `VideoHasher` (vPDQ) decode the bytes as a video. A name that is not
registered, or names a type that cannot be computed from a file (PhotoDNA, opaque vendor hashes),
raises `SignalError` before any file is read.

Bad media never raises: crypto hashes are still returned and `error` says why the rest are missing.
An image hash whose quality is below its type's minimum (PDQ: 50) is left out of `hashes` (its
quality stays in `quality`), and that is not an error: the image is just too flat to fingerprint.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from hashhub import signals
from hashhub.media import MediaError, open_image
from hashhub.signals import BytesHasher, Hashed, ImageHasher, SignalError, SignalType
from hashhub.signals.video_base import VideoHasher

DEFAULT_SIGNALS = ("md5", "sha1", "sha256", "pdq")
#: Files larger than this are digested (streamed) but not decoded (the video decoder's own default).
MAX_DECODE_BYTES = 512 * 1024 * 1024
_COMPUTABLE = (BytesHasher, ImageHasher, VideoHasher)
_CHUNK = 1024 * 1024


@dataclass
class FileHashes:
    """What could be computed for one file."""

    #: signal name -> canonical value, only those computed (a too-flat image has no pdq here).
    hashes: dict[str, str] = field(default_factory=dict)
    #: signal name -> quality 0-100, for signals that have one, e.g. {"pdq": 87}.
    quality: dict[str, int] = field(default_factory=dict)
    #: why a media signal could not be computed (crypto hashes are still present), or None.
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_row(self, names: Iterable[str] = DEFAULT_SIGNALS, *, present: bool = False) -> dict[str, object]:
        """Flat columns: each signal's value, then `<name>_quality` for image signals.

        Missing values are None. `present=True` gives each value as JSON shows it (`present()`:
        structured types become lists), else the canonical text CSV needs.
        """
        row: dict[str, object] = {}
        for signal in plan(names).signals:
            value = self.hashes.get(signal.name)
            row[signal.name] = signal.present(value) if present and value is not None else value
            if issubclass(signal, ImageHasher):
                row[f"{signal.name}_quality"] = self.quality.get(signal.name)
        return row


@dataclass(frozen=True)
class Plan:
    """The signal types to compute, validated, in the order asked for, without repeats."""

    signals: tuple[type[SignalType], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.signals)

    @property
    def digests(self) -> tuple[type[SignalType], ...]:
        return tuple(s for s in self.signals if issubclass(s, BytesHasher))

    @property
    def images(self) -> tuple[type[SignalType], ...]:
        return tuple(s for s in self.signals if issubclass(s, ImageHasher))

    @property
    def videos(self) -> tuple[type[SignalType], ...]:
        return tuple(s for s in self.signals if issubclass(s, VideoHasher))

    @property
    def decodes(self) -> bool:
        """Whether the file's content has to be decoded (not only digested)."""
        return bool(self.images or self.videos)

    def columns(self) -> list[str]:
        """Column names after `file`: e.g. md5, sha1, sha256, pdq, pdq_quality."""
        return list(FileHashes().to_row(self.names))

    def decode_options(self) -> tuple[str, int | None]:
        """(mode, target_size) for one decode that serves every image signal asked for.

        A type may declare `decode_mode` ("L" when luminance is all it reads) and `decode_target`
        (the shorter side it needs); the decode satisfies the most demanding one.
        """
        modes = {s.decode_mode for s in self.images}
        targets = [s.decode_target for s in self.images]
        mode = "L" if modes == {"L"} else "RGB"
        target = None if None in targets else max(targets, default=None)
        return mode, target


def computable() -> list[str]:
    """Names of the registered signals that can be computed from a file."""
    return sorted(name for name, signal in signals.registered().items() if issubclass(signal, _COMPUTABLE))


def plan(names: Iterable[str] = DEFAULT_SIGNALS) -> Plan:
    """Validate signal names once (raises `SignalError`); reuse the plan for many files."""
    if isinstance(names, str):
        names = names.split(",")
    return _plan(tuple(n.strip().lower() for n in names if n.strip()))


@lru_cache(maxsize=64)
def _plan(names: tuple[str, ...]) -> Plan:
    if not names:
        raise SignalError("signal", f"no signals given; choose from {', '.join(computable())}")
    chosen: dict[str, type[SignalType]] = {}
    for name in names:
        signal = signals.get(name)
        if not issubclass(signal, _COMPUTABLE):
            raise SignalError(
                signal.name,
                f"cannot be computed from a file; computable signals: {', '.join(computable())}",
            )
        chosen.setdefault(signal.name, signal)
    return Plan(tuple(chosen.values()))


def hash_bytes(data: bytes, signals: Iterable[str] | Plan = DEFAULT_SIGNALS) -> FileHashes:
    """Fingerprints of one file's bytes (an upload held in memory)."""
    chosen = signals if isinstance(signals, Plan) else plan(signals)
    result = FileHashes()
    for signal in chosen.digests:
        digest = signal.new_hasher()
        digest.update(data)
        result.hashes[signal.name] = digest.hexdigest()
    _hash_image(data, chosen, result)
    _hash_video(data, chosen, result)
    return result


def hash_path(path: str | Path, signals: Iterable[str] | Plan = DEFAULT_SIGNALS) -> FileHashes:
    """Fingerprints of one file on disk. An unreadable file gives empty hashes and the reason."""
    chosen = signals if isinstance(signals, Plan) else plan(signals)
    try:
        with Path(path).open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if chosen.decodes and size <= MAX_DECODE_BYTES:
                return hash_bytes(stream.read(), chosen)
            result = FileHashes(hashes=_digest_stream(stream, chosen))
    except OSError as exc:
        return FileHashes(error=f"cannot read file: {exc.strerror or exc}")
    if chosen.decodes:
        result.error = f"file is {size:,} bytes, over the {MAX_DECODE_BYTES:,}-byte limit for decoding"
    return result


def _digest_stream(stream: BinaryIO, chosen: Plan) -> dict[str, str]:
    digests = {signal.name: signal.new_hasher() for signal in chosen.digests}
    while chunk := stream.read(_CHUNK):
        for digest in digests.values():
            digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in digests.items()}


def _hash_image(data: bytes, chosen: Plan, result: FileHashes) -> None:
    if not chosen.images:
        return
    mode, target = chosen.decode_options()
    try:
        image = open_image(data, target_size=target, mode=mode)
    except MediaError as exc:
        _add_error(result, exc)
        return
    with image:
        for signal in chosen.images:
            _keep(result, signal, signal.hash_image(image))


def _hash_video(data: bytes, chosen: Plan, result: FileHashes) -> None:
    for signal in chosen.videos:
        try:
            hashed = signal.hash_video(data)
        except MediaError as exc:
            _add_error(result, exc)
            continue
        _keep(result, signal, hashed)


def _keep(result: FileHashes, signal: type[SignalType], hashed: Hashed) -> None:
    """Record a media hash, unless its quality is below what the type accepts."""
    if hashed.quality is not None:
        result.quality[signal.name] = hashed.quality
    if hashed.value is not None and signal.usable(hashed.quality):
        result.hashes[signal.name] = hashed.value


def _add_error(result: FileHashes, exc: MediaError) -> None:
    # An image signal and a video signal can both fail on one file; keep both reasons.
    result.error = str(exc) if result.error is None else f"{result.error}; {exc}"
