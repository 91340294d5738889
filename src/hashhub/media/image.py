"""Open an image from untrusted bytes or a path: size limits, EXIF orientation, reduced-size decoding.

Only the formats members meet in uploads are enabled (Pillow would otherwise also try formats such
as EPS, which runs Ghostscript). The pixel limit is checked on the header's size, before any pixel
is decoded, so a small file that claims a huge image costs nothing.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from hashhub.media.errors import MediaError

# HEIC/HEIF (phone photos) through libheif; registering twice is harmless.
pillow_heif.register_heif_opener()
# Importing a Pillow plugin registers its format; `Image.open(formats=...)` needs them registered.
_PLUGINS = (
    BmpImagePlugin,
    GifImagePlugin,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

#: Pillow format names that `open_image` accepts (camera JPEGs Pillow calls MPO open as JPEG).
SUPPORTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF")
#: Default limit on width x height as the file declares it: above a 108 MP phone camera, below
#: Pillow's own hard limit (2 x 89.5 MP), past which it refuses the file anyway.
DEFAULT_MAX_PIXELS = 120_000_000
# JPEG decoders can scale by 1/2, 1/4 or 1/8 while decoding (DCT scaling), nearly for free.
_JPEG_SCALES = (8, 4, 2)
#: `image.info` key holding the (width, height) the image has at full size, EXIF-transposed, when
#: `open_image` returned it reduced; hashers use it to filter as they would at full size.
FULL_SIZE_KEY = "full_size"
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})
# Errors Pillow and its plugins raise for corrupt data; all become MediaError.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    KeyError,
    struct.error,
    zlib.error,
)

Source = bytes | bytearray | memoryview | str | Path


def open_image(
    source: Source,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    target_size: int | None = None,
    mode: str = "RGB",
) -> Image.Image:
    """Decode the first frame of an image, EXIF-transposed, as `mode` ("RGB" or "L").

    `target_size`: the caller only needs the image with its shorter side at least this long, so
    larger images may come back reduced (JPEGs are decoded at 1/2, 1/4 or 1/8 scale, other formats
    reduced by box averaging). None decodes at full size. Raises `MediaError` with the reason.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    stream = _stream(source)
    try:
        with warnings.catch_warnings():
            # Pillow warns about damaged metadata in files it can still decode; untrusted uploads
            # are full of those, and the pixel limit replaces its decompression-bomb warning.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = _open(stream, max_pixels)
            with image:
                full_size = image.size
                _draft(image, target_size, mode)
                image.load()
                decoded_size = image.size
                result = _finish(image, mode)
                if result.size != decoded_size:  # EXIF orientation turned it a quarter
                    full_size = full_size[::-1]
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError(f"image is too large to decode safely: {exc}") from None
    except MemoryError:
        raise MediaError("image is too large to decode in the memory available") from None
    except _DECODE_ERRORS as exc:
        raise MediaError(f"image data is corrupt or truncated: {_reason(exc)}") from None
    finally:
        stream.close()
    if target_size is not None:
        result = _reduce(result, target_size)
    if result.size != full_size:
        result.info[FULL_SIZE_KEY] = full_size
    return result


def _stream(source: Source) -> io.BufferedIOBase:
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise MediaError("file is empty")
        return io.BytesIO(source)
    if not isinstance(source, str | Path):
        raise TypeError(f"source must be bytes or a path, got {type(source).__name__}")
    try:
        stream = Path(source).open("rb")  # noqa: SIM115 - open_image closes it when done
    except OSError as exc:
        raise MediaError(f"cannot read file: {_reason(exc)}") from None
    if stream.seek(0, io.SEEK_END) == 0:
        stream.close()
        raise MediaError("file is empty")
    stream.seek(0)
    return stream


def _open(stream: io.BufferedIOBase, max_pixels: int) -> Image.ImageFile.ImageFile:
    try:
        image = Image.open(stream, formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise MediaError(f"image is over the limit of {max_pixels:,} pixels: {exc}") from None
    except UnidentifiedImageError:
        raise MediaError(
            "not an image in a supported format (" + ", ".join(SUPPORTED_FORMATS) + ")"
        ) from None
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise MediaError(f"image declares an empty size {width}x{height}")
    if width * height > max_pixels:
        image.close()
        raise MediaError(
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
        )
    return image


def _draft(image: Image.Image, target_size: int | None, mode: str) -> None:
    """Ask a JPEG decoder for reduced size, and for luminance only when `mode` is "L"."""
    if image.format not in _JPEG_FORMATS:
        return
    scale = 1
    if target_size is not None:
        shorter = min(image.size)
        scale = next((s for s in _JPEG_SCALES if shorter // s >= target_size), 1)
    requested = (image.size[0] // scale, image.size[1] // scale) if scale > 1 else None
    # "L" from a YCbCr JPEG skips colour conversion: its Y channel is the BT.601 luma PDQ uses.
    image.draft(mode if mode == "L" else None, requested)


def _finish(image: Image.Image, mode: str) -> Image.Image:
    image = ImageOps.exif_transpose(image)
    if image.mode == mode:
        return image
    if image.mode in ("P", "PA") and "transparency" in image.info:
        # Palette transparency has to go through RGBA (Pillow warns otherwise); colours are the same.
        image = image.convert("RGBA")
    elif image.mode.startswith("I;16") or image.mode in ("I", "F"):
        # 16-bit and float images: scale to 8 bits rather than clip everything above 255 to white.
        image = _to_8_bit(image)
    return image.convert(mode)


def _to_8_bit(image: Image.Image) -> Image.Image:
    array = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") else max(float(array.max()), 1.0)
    if top <= 255:
        top = 255.0
    scaled = np.clip(array * (255.0 / top), 0, 255).round().astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def _reduce(image: Image.Image, target_size: int) -> Image.Image:
    """Box-average what is still over twice target_size (non-JPEGs, JPEGs past 1/8 scale)."""
    factor = min(image.size) // target_size
    if factor < 2:
        return image
    return image.reduce(factor)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
