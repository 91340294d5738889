"""Safe decoding: every format we accept opens, and every kind of bad file is a clear MediaError."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashhub.media import FULL_SIZE_KEY, MediaError, open_image


def _photo(size: tuple[int, int] = (320, 200)) -> Image.Image:
    """A benign synthetic picture with structure in both directions (gradients and a disc)."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    red = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    green = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    disc = ((x - width / 3) ** 2 + (y - height / 2) ** 2 < (height / 4) ** 2) * 255
    return Image.fromarray(np.dstack([red, green, disc.astype(np.uint8)]), "RGB")


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge size but holds almost nothing: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("JPEG", {"quality": 95}),
        ("PNG", {}),
        ("GIF", {}),
        ("WEBP", {"lossless": True}),
        ("BMP", {}),
        ("TIFF", {}),
        ("HEIF", {"quality": 90}),
    ],
)
def test_supported_formats_open_as_rgb(fmt: str, options: dict[str, object]) -> None:
    image = open_image(_encode(_photo(), fmt, **options))
    assert image.mode == "RGB"
    assert image.size == (320, 200)


def test_paths_and_bytes_give_the_same_pixels(tmp_path: Path) -> None:
    data = _encode(_photo(), "PNG")
    (tmp_path / "a.png").write_bytes(data)
    from_path = np.asarray(open_image(tmp_path / "a.png"))
    assert np.array_equal(from_path, np.asarray(open_image(data)))
    assert np.array_equal(from_path, np.asarray(open_image(str(tmp_path / "a.png"))))


def test_luminance_mode() -> None:
    image = open_image(_encode(_photo(), "PNG"), mode="L")
    assert image.mode == "L"
    with pytest.raises(ValueError, match="mode"):
        open_image(_encode(_photo(), "PNG"), mode="CMYK")


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers turn it 90 degrees clockwise
    data = _encode(_photo(), "JPEG", quality=95, exif=exif.tobytes())
    image = open_image(data)
    assert image.size == (200, 320)
    upright = np.asarray(_photo().transpose(Image.Transpose.ROTATE_270), dtype=np.int16)
    assert np.abs(np.asarray(image, dtype=np.int16) - upright).mean() < 3


def test_animated_gif_gives_its_first_frame() -> None:
    first = Image.new("RGB", (64, 64), (255, 0, 0))
    second = Image.new("RGB", (64, 64), (0, 0, 255))
    data = _encode(first, "GIF", save_all=True, append_images=[second], duration=100)
    assert open_image(data).getpixel((10, 10)) == (255, 0, 0)


def test_sixteen_bit_images_are_scaled_not_clipped() -> None:
    ramp = (np.arange(256 * 64, dtype=np.uint16).reshape(64, 256) * 4).astype(np.uint16)
    data = _encode(Image.fromarray(ramp), "PNG")
    values = np.asarray(open_image(data, mode="L"))
    assert values.min() < 10
    assert 100 < values.mean() < 160


def test_large_jpegs_decode_at_reduced_size_and_remember_the_full_size() -> None:
    data = _encode(_photo((2400, 1600)), "JPEG", quality=90)
    image = open_image(data, target_size=256, mode="L")
    assert image.size == (600, 400)  # 1/4 scale: the largest that keeps the short side >= 256
    assert image.info[FULL_SIZE_KEY] == (2400, 1600)
    assert open_image(data).size == (2400, 1600)


def test_large_non_jpegs_are_reduced_too() -> None:
    image = open_image(_encode(_photo((1200, 900)), "PNG"), target_size=256)
    assert image.size == (400, 300)
    assert image.info[FULL_SIZE_KEY] == (1200, 900)


def test_small_images_are_not_reduced() -> None:
    image = open_image(_encode(_photo(), "JPEG"), target_size=256)
    assert image.size == (320, 200)
    assert FULL_SIZE_KEY not in image.info


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(MediaError, match=r"15000x10000 = 150,000,000 pixels, over the limit"):
        open_image(_png_header_only(15_000, 10_000))
    with pytest.raises(MediaError, match="over the limit"):
        open_image(_png_header_only(100_000, 100_000))


def test_pixel_limit_is_configurable() -> None:
    data = _encode(_photo(), "PNG")
    with pytest.raises(MediaError, match="over the limit of 1,000"):
        open_image(data, max_pixels=1000)
    assert open_image(data, max_pixels=64_000).size == (320, 200)


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = _encode(_photo((640, 480)), "JPEG", quality=90)
    with pytest.raises(MediaError, match="corrupt or truncated"):
        open_image(data[: len(data) // 2])


@pytest.mark.parametrize("source", ["bytes", "path"])
def test_empty_file(tmp_path: Path, source: str) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(MediaError, match="file is empty"):
        open_image(b"" if source == "bytes" else path)


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list: milk, eggs\n")
    with pytest.raises(MediaError, match="not an image in a supported format"):
        open_image(path)


def test_formats_outside_the_list_are_refused() -> None:
    # PPM is a real image format Pillow reads; we accept only the formats uploads use.
    with pytest.raises(MediaError, match="not an image in a supported format"):
        open_image(_encode(_photo(), "PPM"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot read file"):
        open_image(tmp_path / "absent.png")


def test_media_error_is_a_value_error() -> None:
    assert issubclass(MediaError, ValueError)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF", "HEIF"])
def test_reduced_decode_of_a_sideways_image_reports_the_upright_full_size(fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(_photo((1200, 800)), fmt, exif=exif.tobytes())
    image = open_image(data, target_size=200)
    assert image.size[0] < image.size[1]
    assert image.info[FULL_SIZE_KEY] == (800, 1200)
