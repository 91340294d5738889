"""The hub's `/match/media` matches edited copies of a listed photo through query variants and says
which variant found each match; `?variants=` chooses them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from tests.hub.conftest import World, item


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
def listed(world: World, corpus: Path) -> tuple[str, Image.Image]:
    """A corpus photo the test pretends is listed (by its reference PDQ), and the photo."""
    with (corpus / "photos.reference.csv").open() as f:
        row = next(r for r in csv.DictReader(f) if r["pdq"] and int(r["pdq_quality"]) >= 80)
    (item_id,) = world.submit_ok("iwf", [item("photo", pdq=row["pdq"])])
    with Image.open(corpus / "photos" / row["file"]) as im:
        return item_id, im.convert("RGB")


def match_media(world: World, data: bytes, **params: str) -> dict:
    r = world.client("plat").post(
        "/api/v1/match/media", files={"file": ("x.jpg", data, "image/jpeg")}, params=params
    )
    assert r.status_code == 200, r.text
    return r.json()


def letterbox(image: Image.Image) -> Image.Image:
    frame = Image.new("RGB", (image.width * 2, image.height + image.height // 2))
    frame.paste(image, (image.width // 2, image.height // 4))
    return frame


@pytest.mark.parametrize(
    ("edit", "variant"),
    [
        (lambda im: im, "plain"),
        (ImageOps.mirror, "mirror"),
        (lambda im: im.rotate(-90, expand=True), "rot90"),
        (lambda im: ImageOps.expand(im, border=round(im.width * 0.05), fill=0), "trimmed"),
        (letterbox, "trimmed"),
    ],
    ids=["plain", "mirror", "rot90", "border", "letterbox"],
)
def test_an_edited_copy_matches_and_names_its_variant(world: World, listed, edit, variant: str) -> None:
    item_id, photo = listed
    body = match_media(world, jpeg(edit(photo)))
    assert [(m["item"], m["variant"], m["signal"]) for m in body["matches"]] == [(item_id, variant, "pdq")]
    assert body["hashes"]["pdq"]  # the untouched upload's own PDQ is what `hashes` reports


def test_variants_can_be_chosen_or_turned_off(world: World, listed) -> None:
    _, photo = listed
    mirrored = jpeg(ImageOps.mirror(photo))
    assert match_media(world, mirrored, variants="none")["matches"] == []
    assert match_media(world, mirrored, variants="borders,rotations")["matches"] == []
    assert [m["variant"] for m in match_media(world, mirrored, variants="mirror")["matches"]] == ["mirror"]
    r = world.client("plat").post("/api/v1/match/media", content=mirrored, params={"variants": "sideways"})
    assert r.status_code == 422 and "sideways" in r.json()["error"]


def test_a_pillarboxed_copy_of_a_listed_video_matches_through_its_trimmed_frames(
    world: World, corpus: Path
) -> None:
    from tests.support import video_clips
    from tests.test_video_trim import boxed

    from hashhub.signals.vpdq import VpdqSignal

    photos = sorted((corpus / "photos").glob("*.jpg"))[5::97][:6]
    original = video_clips.encode(video_clips.slideshow_frames(photos[:3]))
    (item_id,) = world.submit_ok("iwf", [item("video", vpdq=VpdqSignal.hash_video(original).value)])

    def upload(data: bytes, **params: str) -> dict:
        r = world.client("plat").post(
            "/api/v1/match/media", files={"file": ("x.mp4", data, "video/mp4")}, params=params
        )
        assert r.status_code == 200, r.text
        return r.json()

    copy = video_clips.encode(boxed(video_clips.slideshow_frames(photos[:3]), (480, 240)))
    body = upload(copy)
    assert [(m["item"], m["variant"], m["signal"]) for m in body["matches"]] == [(item_id, "trimmed", "vpdq")]
    assert body["matches"][0]["query_share"] == 1.0
    assert upload(copy, variants="mirrors")["matches"] == []  # trimming off: the bars hide it
    unlisted = video_clips.encode(boxed(video_clips.slideshow_frames(photos[3:]), (480, 240)))
    assert upload(unlisted)["matches"] == []
