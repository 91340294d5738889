"""Hash one upload for matching, with query variants: what the agent's scanner (API, CLI, Dask
workers) and the hub's `/match/media` share.

    from hashhub.detect import hash_media, hash_file
    scanned = hash_media(data, VariantOptions())   # or hash_file(path, options)
    scanned.hashed                                  # FileHashes: digests + the plain PDQ (or vPDQ)
    scanned.variants                                # the image's other query variants (never "plain")
    scanned.video_variants                          # a video's: vPDQ of its frames trimmed

Images are decoded once: the plain PDQ of the untouched image is computed first (it is what
`hashed.hashes["pdq"]` reports, as `hashhub.hashing` would) and the enabled variants come from the
same decode (`hashhub.variants`). Videos get vPDQ of their untouched frames, and with "trimmed"
enabled also a vPDQ of the same frames with their uniform margins cut (letterbox and pillarbox
bars; `media.trim.trim_frame` as `VpdqSignal.hash_frames`' per-frame hook), from the same decode:
callers match it like the plain vPDQ and report what only it found under "trimmed". With every
variant off, this is `hash_bytes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from hashhub.hashing import DEFAULT_SIGNALS, MAX_DECODE_BYTES, FileHashes, hash_bytes, hash_path, plan
from hashhub.media import MediaError, open_image
from hashhub.media.trim import trim_frame
from hashhub.media.video import Source, VideoLimits, is_video
from hashhub.signals import PdqSignal, VpdqSignal
from hashhub.variants import PLAIN, PLAIN_ONLY, TRIMMED, Variant, VariantOptions, query_variants

IMAGE_SIGNALS: tuple[str, ...] = tuple(DEFAULT_SIGNALS)
DIGESTS: tuple[str, ...] = tuple(s for s in IMAGE_SIGNALS if s != PdqSignal.name)
VIDEO_SIGNALS: tuple[str, ...] = (*DIGESTS, VpdqSignal.name)


def signals_for(source: Source) -> tuple[str, ...]:
    """What to compute for a file: vPDQ for videos (sniffed from the first bytes), PDQ otherwise."""
    return VIDEO_SIGNALS if is_video(source) else IMAGE_SIGNALS


class VideoVariant(NamedTuple):
    """A video's fingerprint as one query variant made it: `vpdq` is canonical vPDQ text."""

    name: str
    vpdq: str
    quality: int

    @property
    def hashes(self) -> dict[str, str]:
        """As `FileHashes.hashes` holds the plain one: what to match."""
        return {VpdqSignal.name: self.vpdq}


@dataclass(frozen=True)
class Scanned:
    """One upload's fingerprints, and the query variants of an image (plain excluded: it is
    `hashed.hashes["pdq"]`) or of a video (`video_variants`: "trimmed" when some sampled frame
    had margins to cut). Picklable: Dask and process workers send it back."""

    hashed: FileHashes
    variants: tuple[Variant, ...] = ()
    video_variants: tuple[VideoVariant, ...] = ()


def hash_media(
    data: bytes, options: VariantOptions = PLAIN_ONLY, *, video_limits: VideoLimits | None = None
) -> Scanned:
    """Fingerprints of an upload held in memory (never written anywhere)."""
    if is_video(data):
        return _hash_video(data, video_limits, options)
    if options.enabled <= {PLAIN}:
        return Scanned(hash_bytes(data, IMAGE_SIGNALS))
    hashed = hash_bytes(data, DIGESTS)
    mode, target = plan([PdqSignal.name]).decode_options()
    try:
        image = open_image(data, target_size=target, mode=mode)
    except MediaError as exc:
        return Scanned(FileHashes(hashed.hashes, hashed.quality, str(exc)))
    with image:
        plain, *others = query_variants(image, options=options)
    hashed.quality[PdqSignal.name] = plain.quality
    if PdqSignal.usable(plain.quality):
        hashed.hashes[PdqSignal.name] = plain.pdq
    return Scanned(hashed, tuple(others))


def hash_file(path: str | Path, options: VariantOptions = PLAIN_ONLY) -> Scanned:
    """`hash_media` for a file on disk; videos, files too big to decode and unreadable files get
    what `hash_path` gives them."""
    signals = signals_for(path)
    if options.enabled <= {PLAIN} or (signals == VIDEO_SIGNALS and not options.wants(TRIMMED)):
        return Scanned(hash_path(path, signals))
    try:
        with Path(path).open("rb") as stream:
            data = stream.read(MAX_DECODE_BYTES + 1)
    except OSError:
        return Scanned(hash_path(path, signals))  # it says why the file cannot be read
    if len(data) > MAX_DECODE_BYTES:
        return Scanned(hash_path(path, signals))
    return hash_media(data, options)


def _hash_video(data: bytes, limits: VideoLimits | None, options: VariantOptions) -> Scanned:
    """Digests and vPDQ; with trimming enabled, the trimmed frames' vPDQ too, from one decode."""
    if limits is None and not options.wants(TRIMMED):
        return Scanned(hash_bytes(data, VIDEO_SIGNALS))
    hashed = hash_bytes(data, DIGESTS)
    transforms = [None, trim_frame] if options.wants(TRIMMED) else [None]
    try:
        plain, *others = VpdqSignal.hash_frames_each(data, transforms, limits=limits)
    except MediaError as exc:
        return Scanned(FileHashes(hashed.hashes, hashed.quality, str(exc)))
    video = VpdqSignal.hashed(plain)
    hashed.quality[VpdqSignal.name] = video.quality or 0
    if video.value is not None:
        hashed.hashes[VpdqSignal.name] = video.value
    variants = []
    for frames in others:  # only "trimmed" today; kept only where it differs from the plain frames
        trimmed = VpdqSignal.hashed(frames)
        if trimmed.value is not None and frames != plain:
            variants.append(VideoVariant(TRIMMED, trimmed.value, trimmed.quality or 0))
    return Scanned(hashed, video_variants=tuple(variants))
