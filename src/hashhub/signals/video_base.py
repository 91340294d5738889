"""The video-hashing ability: a mixin, like `BytesHasher` and `ImageHasher` in `base`.

A signal type with `VideoHasher` can fingerprint a whole video from its bytes; callers ask
`issubclass(signal, VideoHasher)` rather than testing a type's name.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashhub.media.video import VideoLimits
    from hashhub.signals.base import Hashed


class VideoHasher(abc.ABC):
    """Mixin: the signal can be computed from a video file's bytes (decoded in memory)."""

    @classmethod
    @abc.abstractmethod
    def hash_video(cls, data: bytes, fps: float = 1.0, limits: VideoLimits | None = None) -> Hashed:
        """Fingerprint of the video in `data`, sampling `fps` frames a second.

        Raises `hashhub.media.MediaError` when `data` is not a decodable video within `limits`.
        """
