"""Query variants in the agent: an edited copy of a listed photo is found and the match says which
variant found it; the policy file chooses the variants and what a variant match does."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from hashhub.agent.app import create_app
from hashhub.agent.backlog import scan_local
from hashhub.agent.policy import Policy, PolicyError
from hashhub.agent.scanner import Scanner

from .conftest import FakeHub, TestClient, corpus_rows, item_from_row

AUTH = {"Authorization": "Bearer test-agent-key"}


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def letterbox(image: Image.Image) -> Image.Image:
    """The photo centred in black bars on a frame twice its width (a pillar/letterbox)."""
    frame = Image.new("RGB", (image.width * 2, image.height + image.height // 2))
    frame.paste(image, (image.width // 2, image.height // 4))
    return frame


EDITS: dict[str, tuple[Callable[[Image.Image], Image.Image], str]] = {
    "mirror": (ImageOps.mirror, "mirror"),
    "rot90": (lambda im: im.rotate(-90, expand=True), "rot90"),  # turned clockwise
    "border": (
        lambda im: ImageOps.expand(im, border=round(im.width * 0.08), fill=(255, 255, 255)),
        "trimmed",
    ),
    "letterbox": (letterbox, "trimmed"),
}


@pytest.fixture
def photos(corpus: Path, fake_hub: FakeHub) -> list[Path]:
    """Three corpus photos a test pretends are listed (by their md5 and PDQ)."""
    rows = corpus_rows(corpus, 3, offset=20)
    for n, row in enumerate(rows):
        fake_hub.upsert(item_from_row(row, n))
    return [corpus / "photos" / row["file"] for row in rows]


def client_with(runtime, policy: Policy | None = None) -> TestClient:
    runtime.sync_once()
    if policy is not None:
        runtime.scanner = Scanner(runtime.store, policy, runtime.scanner.matcher)
    return TestClient(create_app(runtime, background_sync=False))


def scan(client: TestClient, data: bytes) -> dict:
    r = client.post("/api/v1/scan", headers=AUTH, files={"file": ("upload.jpg", data, "image/jpeg")})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_copy_is_found_through_the_right_variant(runtime, photos, edit: str) -> None:
    transform, variant = EDITS[edit]
    with Image.open(photos[0]) as im:
        data = jpeg(transform(im.convert("RGB")))
    with client_with(runtime) as client:
        body = scan(client, data)
    [match] = body["matches"]
    assert match["item"] == "item-0" and match["variant"] == variant and match["signal"] == "pdq"
    assert body["action"] == "block_and_report"  # the default policy treats variants like plain
    assert set(body["hashes"]) == {"md5", "sha1", "sha256", "pdq"}  # the untouched image's PDQ


def test_the_untouched_photo_is_reported_as_plain(runtime, photos) -> None:
    with client_with(runtime) as client:
        body = scan(client, photos[1].read_bytes())
    assert [(m["item"], m["variant"]) for m in body["matches"]] == [("item-1", "plain")]


def test_a_policy_without_variants_misses_the_mirror(runtime, photos) -> None:
    with Image.open(photos[0]) as im:
        mirrored = jpeg(ImageOps.mirror(im.convert("RGB")))
    policy = Policy.from_toml('[variants]\nenabled = ["borders"]\n')
    with client_with(runtime, policy) as client:
        assert scan(client, mirrored)["matches"] == []
    with client_with(runtime, Policy.from_toml('[variants]\nenabled = ["none"]\n')) as client:
        assert scan(client, mirrored)["matches"] == []
        assert client.get("/api/v1/status", headers=AUTH).json()["policy"]["variants"] == ["plain"]


def test_a_policy_sends_variant_matches_to_review(runtime, photos) -> None:
    with Image.open(photos[0]) as im:
        mirrored = jpeg(ImageOps.mirror(im.convert("RGB")))
    policy = Policy.from_toml('[defaults]\naction = "block"\n[variants]\naction = "review"\n')
    with client_with(runtime, policy) as client:
        body = scan(client, mirrored)
        assert body["action"] == "review" and body["rule"] == "variants" and "review" in body
        plain = scan(client, photos[0].read_bytes())
        assert plain["action"] == "block"  # the untouched photo still blocks


def test_a_rule_can_name_variants(runtime, photos) -> None:
    with Image.open(photos[0]) as im:
        turned = jpeg(im.convert("RGB").rotate(-90, expand=True))
    policy = Policy.from_toml(
        '[[rules]]\nname = "turned"\nvariant = ["rotations"]\naction = "block"\n'
        '[[rules]]\nname = "rest"\naction = "allow"\n'
    )
    with client_with(runtime, policy) as client:
        body = scan(client, turned)
    assert (body["action"], body["rule"], body["matches"][0]["variant"]) == ("block", "turned", "rot90")


def test_the_cli_backlog_scan_uses_the_variants(runtime, photos, tmp_path: Path) -> None:
    folder = tmp_path / "backlog"
    folder.mkdir()
    with Image.open(photos[2]) as im:
        (folder / "flipped.jpg").write_bytes(jpeg(ImageOps.flip(im.convert("RGB"))))
    runtime.sync_once()
    runtime.scanner.refresh()
    (result,) = scan_local(runtime.scanner, [folder], workers=1)
    assert [(m.meta.item_id, m.variant) for m in result.matches] == [("item-2", "flipv")]
    off = Scanner(runtime.store, Policy.from_toml('[variants]\nenabled = ["none"]\n'))
    off.refresh()
    (result,) = scan_local(off, [folder], workers=1)
    assert result.matches == []


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[variants]\nenabled = ["sideways"]\n', "sideways"),
        ("[variants]\nradii = { trimmed = -1 }\n", "trimmed"),
        ('[variants]\naction = "zap"\n', "action must be one of"),
        ("[variants]\nspeed = 1\n", "unknown keys ['speed']"),
        ('[[rules]]\naction = "block"\nvariant = ["upside"]\n', "upside"),
    ],
)
def test_bad_variant_settings_are_refused_with_the_reason(toml: str, message: str) -> None:
    with pytest.raises(PolicyError) as error:
        Policy.from_toml(toml, source="policy.toml")
    assert message in str(error.value) and "policy.toml" in str(error.value)


def test_a_pillarboxed_copy_of_a_listed_video_is_found_through_its_trimmed_frames(
    runtime, fake_hub: FakeHub, corpus: Path, tmp_path: Path
) -> None:
    from hashhub.signals.vpdq import VpdqSignal
    from tests.support import video_clips
    from tests.test_video_trim import boxed

    from .conftest import make_item

    photos = sorted((corpus / "photos").glob("*.jpg"))[5::97][:6]
    original = video_clips.encode(video_clips.slideshow_frames(photos[:3]))
    fake_hub.upsert(make_item(9, fingerprints={"vpdq": VpdqSignal.hash_video(original).value}))
    copy = video_clips.encode(boxed(video_clips.slideshow_frames(photos[:3]), (480, 240)))
    unlisted = video_clips.encode(boxed(video_clips.slideshow_frames(photos[3:]), (480, 240)))
    with client_with(runtime) as client:
        [match] = scan(client, copy)["matches"]
        assert (match["item"], match["variant"], match["signal"]) == ("item-9", "trimmed", "vpdq")
        assert scan(client, unlisted)["matches"] == []
    with client_with(runtime, Policy.from_toml('[variants]\nenabled = ["mirrors"]\n')) as client:
        assert scan(client, copy)["matches"] == []  # trimming off: the bars hide it
    folder = tmp_path / "videos"  # the CLI's and Dask's path: files hashed by `hash_file`
    folder.mkdir()
    (folder / "boxed.mp4").write_bytes(copy)
    (result,) = scan_local(
        Scanner(runtime.store, Policy.default(), runtime.scanner.matcher), [folder], workers=1
    )
    assert [(m.meta.item_id, m.variant) for m in result.matches] == [("item-9", "trimmed")]
