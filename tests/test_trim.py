"""Border, letterbox and pillarbox trimming: found on any side and in any colour, after JPEG, and
never where the picture itself reaches the edge."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from hashhub.media.trim import find_content, trim


def texture(height: int, width: int, seed: int = 11) -> np.ndarray:
    """A busy RGB picture whose every edge row and column has detail (no margin of its own)."""
    coarse = np.random.default_rng(seed).integers(
        0, 256, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8
    )
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image)


def jpeg(pixels: np.ndarray, quality: int = 85) -> np.ndarray:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    return np.asarray(Image.open(out).convert("RGB"))


def framed(
    pixels: np.ndarray, margins: tuple[int, int, int, int], colour: tuple[int, int, int]
) -> np.ndarray:
    """`pixels` inside margins (left, top, right, bottom) of one colour."""
    return np.asarray(ImageOps.expand(Image.fromarray(pixels), margins, fill=colour))


def close(box: tuple[int, ...], expected: tuple[int, ...], slack: int = 3) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(box, expected, strict=True))


@pytest.mark.parametrize(
    "colour",
    [(0, 0, 0), (255, 255, 255), (128, 128, 128), (200, 30, 40)],
    ids=["black", "white", "grey", "red"],
)
@pytest.mark.parametrize(
    "margins",
    [(20, 20, 20, 20), (0, 45, 0, 45), (60, 0, 60, 0), (0, 0, 0, 30), (25, 0, 0, 0)],
    ids=["frame", "letterbox", "pillarbox", "bottom-bar", "left-bar"],
)
def test_margins_of_any_colour_on_any_side_are_found_after_jpeg(colour, margins):
    content = texture(240, 320)
    image = jpeg(framed(content, margins, colour))
    found = find_content(image)
    left, top = margins[:2]
    assert found.trimmed
    assert close(found.box, (left, top, left + 320, top + 240)), found.box


def test_luma_and_rgb_find_the_same_box():
    image = jpeg(framed(texture(200, 300), (0, 30, 0, 30), (0, 0, 0)))
    luma = np.asarray(Image.fromarray(image).convert("L"))
    assert close(find_content(luma).box, find_content(image).box, slack=1)  # Pillow rounds its L
    assert close(find_content(luma).box, (0, 30, 300, 230), slack=1)


def test_noisy_margin_from_heavy_jpeg_and_a_blurred_edge_is_still_found():
    content = texture(200, 300)
    bordered = Image.fromarray(framed(content, (30, 30, 30, 30), (255, 255, 255)))
    # Resizing blurs the edge between margin and picture; quality 40 adds block noise.
    blurred = np.asarray(bordered.resize((270, 195), Image.Resampling.BILINEAR))
    found = find_content(jpeg(blurred, quality=40))
    assert found.trimmed
    # Within one JPEG block (8 px) of the edge at 22.5: the block the edge crosses rings.
    assert close(found.box, (22, 22, 248, 173), slack=8), found.box
    assert found.box[0] <= 23  # and never into the picture


def test_a_video_frame_with_pillarbox_bars_is_trimmed_per_frame():
    """A 4:3 picture in a 16:9 frame, as a decoder hands over a luma plane (uint8, H x W)."""
    frame = np.zeros((360, 640), dtype=np.uint8) + 16  # studio black
    frame[:, 80:560] = np.asarray(Image.fromarray(texture(360, 480)).convert("L"))
    content, found = trim(frame)
    assert found.box == (80, 0, 560, 360)
    assert content.shape == (360, 480)


def test_pictures_that_reach_every_edge_are_left_alone(corpus):
    content = texture(240, 320)
    assert not find_content(jpeg(content)).trimmed
    # Kodak photos: lossless, real scenes with detail up to every edge.
    for path in sorted((corpus / "kodak").glob("*.png"))[:12]:
        found = find_content(np.asarray(Image.open(path).convert("L")))
        assert not found.trimmed, path.name


def test_a_sky_that_changes_towards_the_horizon_is_not_a_margin():
    rows = np.linspace(90, 200, 120, dtype=np.float32)[:, None]
    sky = np.repeat(rows, 320, axis=1)
    image = np.vstack([sky, np.asarray(Image.fromarray(texture(120, 320)).convert("L"), np.float32)])
    found = find_content(image.astype(np.uint8))
    assert found.box[1] < 20  # at most the few first rows, which are within tolerance of each other


def test_flat_images_and_thin_lines_are_not_trimmed():
    assert not find_content(np.full((100, 100), 255, dtype=np.uint8)).trimmed
    thin = framed(texture(300, 300), (1, 1, 1, 1), (0, 0, 0))
    assert not find_content(thin).trimmed  # a 1 px line is under the 1% minimum


def test_white_frame_around_a_product_shot_on_white_offers_the_even_frame_as_alternative():
    """The frame runs on into the shot's own white background on some sides: the full trim cuts
    into the picture, and the narrowest side's width, applied evenly, is the right box."""
    content = texture(200, 300).copy()
    content[:, :40] = 255  # the product shot's backdrop reaches the left edge
    image = jpeg(framed(content, (15, 15, 15, 15), (255, 255, 255)), quality=90)
    found = find_content(image)
    assert found.box[0] > 40  # the tolerant trim went through the backdrop
    assert any(close(box, (15, 15, 315, 215), slack=2) for box in found.boxes), found.boxes


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="pixel array"):
        find_content(np.zeros(10))
    with pytest.raises(ValueError, match="pixel array"):
        find_content(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="pixel array"):
        find_content(np.zeros((5, 5, 7)))
