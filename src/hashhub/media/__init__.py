"""Safe media decoding: the only place hashhub turns untrusted bytes into pixels.

    from hashhub.media import open_image, MediaError
    image = open_image("photo.heic")                      # RGB, EXIF orientation applied
    small = open_image(data, target_size=256, mode="L")   # JPEGs decoded at 1/2, 1/4 or 1/8 size

Every failure (empty file, unknown format, truncated data, too many pixels) is a `MediaError` whose
message names the problem; nothing else escapes for bad input. Video decoding joins as `media.video`.
"""

from __future__ import annotations

from hashhub.media.errors import MediaError
from hashhub.media.image import DEFAULT_MAX_PIXELS, FULL_SIZE_KEY, SUPPORTED_FORMATS, open_image

__all__ = ["DEFAULT_MAX_PIXELS", "FULL_SIZE_KEY", "SUPPORTED_FORMATS", "MediaError", "open_image"]
