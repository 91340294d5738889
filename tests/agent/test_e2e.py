"""End to end with real processes on loopback: a hub, a contributor, and an agent that syncs and scans.

A contributor lists 100 benign corpus photos (stand-ins for known items); the agent scans six
transformed copies of each plus 1,000 other corpus photos. Recall is asserted per transform at what
the default policy's query variants reach (border trimming and crop pads recover the border and crop
transforms that plain PDQ misses), and false matches must be zero. Then the contributor withdraws 10
items and the next sync must stop them matching.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageEnhance, ImageOps
from typer.testing import CliRunner

from hashhub.variants import VARIANT_NAMES

from .conftest import cli_app
from .procs import env, free_port, hashhub, hashhub_json, server

pytestmark = pytest.mark.slow

Transform = Callable[[Image.Image], bytes]


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _crop(image: Image.Image, share: float) -> Image.Image:
    dx, dy = round(image.width * share / 2), round(image.height * share / 2)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


TRANSFORMS: dict[str, Transform] = {
    "resize50": lambda im: _jpeg(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)),
    "jpeg40": lambda im: _jpeg(im, 40),
    "bright20": lambda im: _jpeg(ImageEnhance.Brightness(im).enhance(1.2)),
    "grayscale": lambda im: _jpeg(ImageOps.grayscale(im)),
    "crop3": lambda im: _jpeg(_crop(im, 0.03)),  # 3% of width and height cut, centred
    "border5": lambda im: _jpeg(
        ImageOps.expand(im, border=(round(im.width * 0.05), round(im.height * 0.05)), fill=0)
    ),
}
# Measured with the default policy (every query variant on) on these 100 photos (small, ~300x200
# px): resize50 93%, jpeg40/bright20/grayscale 100%, crop3 100%, border5 98% (plain PDQ alone:
# crop3 71%, border5 0%: a black frame moves PDQ's whole gradient field). Thresholds sit a little
# under what we measured.
MIN_RECALL = {
    "resize50": 0.85,
    "jpeg40": 0.97,
    "bright20": 0.97,
    "grayscale": 0.97,
    "crop3": 0.95,
    "border5": 0.93,
}


def _rows(corpus: Path) -> list[dict[str, str]]:
    with open(corpus / "photos.reference.csv", newline="") as handle:
        return [r for r in csv.DictReader(handle) if r["pdq"]]


@pytest.fixture(scope="module")
def world(corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    """A running hub with a contributor and a member; 100 listed photos and the files to scan."""
    tmp = tmp_path_factory.mktemp("e2e")
    hub_db = f"sqlite:///{tmp / 'hub.db'}"
    # Set-up commands run in-process (the same CLI code, without three interpreter start-ups); the
    # hub and the agent below are real processes.
    app, runner = cli_app(), CliRunner()

    def admin(*args: str) -> dict:
        result = runner.invoke(app, [*args, "--db", hub_db])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    contributor = admin("hub", "org", "create", "hotline", "--role", "contributor")
    member = admin("hub", "org", "create", "platform", "--role", "member")
    admin("hub", "list", "create", "verified", "--read", "platform", "--write", "hotline")

    rows = _rows(corpus)
    known, others = rows[::20][:100], [r for i, r in enumerate(rows) if i % 20][:1000]
    assert len(known) == 100 and len(others) == 1000

    scan_dir = tmp / "scan"
    for name in TRANSFORMS:
        (scan_dir / name).mkdir(parents=True)
    for row in known:
        image = Image.open(corpus / "photos" / row["file"]).convert("RGB")
        for name, transform in TRANSFORMS.items():
            (scan_dir / name / row["file"]).write_bytes(transform(image))
    (scan_dir / "others").mkdir()
    for row in others:  # links, not copies: the agent reads them like any file
        (scan_dir / "others" / row["file"]).symlink_to(corpus / "photos" / row["file"])

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server(
        "hub", "serve", "--db", hub_db, "--port", str(port), health=f"{url}/healthz", log=tmp / "hub.log"
    ):
        items = [
            {
                "external_id": row["file"],
                "content_type": "image",
                "classification": {"scheme": "industry", "value": "A1"},
                "verification": {"reviewers": 2},
                "labels": {},
                "fingerprints": {"pdq": row["pdq"], "md5": row["md5"]},
            }
            for row in known
        ]
        answer = httpx.post(
            f"{url}/api/v1/items",
            json={"list": "verified", "items": items},
            headers={"Authorization": f"Bearer {contributor['api_key']}"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        ids = {row["file"]: entry["id"] for row, entry in zip(known, answer.json()["items"], strict=True)}
        yield {
            "url": url,
            "contributor_key": contributor["api_key"],
            "member_key": member["api_key"],
            "agent_db": f"sqlite:///{tmp / 'agent.db'}",
            "known": known,
            "ids": ids,
            "scan_dir": scan_dir,
            "corpus": corpus,
        }


def _scan(world, *paths: Path) -> list[dict]:
    out = hashhub("agent", "scan", *map(str, paths), "--db", world["agent_db"], "--no-progress")
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_sync_scan_recall_and_withdrawal(world) -> None:
    synced = hashhub_json(
        "agent",
        "sync",
        "--hub",
        world["url"],
        "--db",
        world["agent_db"],
        env=env(HASHHUB_KEY=world["member_key"]),
    )
    assert synced["ok"] and synced["bootstrapped"] and synced["upserts"] == 100

    lines = _scan(world, world["scan_dir"])
    assert len(lines) == 600 + 1000 and all(
        set(line) >= {"file", "matched", "action", "matches"} for line in lines
    )
    item_of = {v: k for k, v in world["ids"].items()}
    hits: dict[str, int] = defaultdict(int)
    false_matches = []
    for line in lines:
        path = Path(line["file"])
        folder = path.parent.name
        found = {m["item"] for m in line["matches"]}
        if folder == "others":
            if found:
                false_matches.append((path.name, found))
            continue
        wrong = {i for i in found if item_of[i] != path.name}
        if wrong:
            false_matches.append((f"{folder}/{path.name}", wrong))
        if world["ids"][path.name] in found:
            hits[folder] += 1
            assert line["action"] in ("block_and_report", "review")
            assert {m["variant"] for m in line["matches"]} <= set(VARIANT_NAMES)
    recall = {name: hits[name] / 100 for name in TRANSFORMS}
    print("\nrecall per transform:", json.dumps(recall))
    assert false_matches == []
    for name, floor in MIN_RECALL.items():
        assert recall[name] >= floor, (name, recall[name])

    # The contributor withdraws 10 items; after the next sync they stop matching, the rest still do.
    withdrawn = world["known"][:10]
    for row in withdrawn:
        answer = httpx.post(
            f"{world['url']}/api/v1/items/{world['ids'][row['file']]}/withdraw",
            json={"reason": "listed in error"},
            headers={"Authorization": f"Bearer {world['contributor_key']}"},
        )
        assert answer.status_code == 200, answer.text
    again = hashhub_json("agent", "sync", "--db", world["agent_db"])  # key kept from the first sync
    assert again["ok"] and again["deletes"] == 10 and again["sent"] > 0  # hits went back to the hub
    originals = [world["corpus"] / "photos" / row["file"] for row in world["known"][:20]]
    by_name = {Path(line["file"]).name: line for line in _scan(world, *originals)}
    for row in world["known"][:10]:
        assert not by_name[row["file"]]["matched"], row["file"]
    for row in world["known"][10:20]:
        assert by_name[row["file"]]["matched"], row["file"]

    status = json.loads(CliRunner().invoke(cli_app(), ["agent", "status", "--db", world["agent_db"]]).stdout)
    assert status["items"] == 90 and status["hubs"][0]["last_error"] is None


def test_sync_against_a_stopped_hub_fails_cleanly(world, tmp_path) -> None:
    # In-process (the CLI's own runner) against the real hub: no extra interpreter start-ups.
    app, runner = cli_app(), CliRunner()
    db = f"sqlite:///{tmp_path / 'agent.db'}"
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    result = runner.invoke(app, ["agent", "sync", "--hub", down, "--key", "k", "--db", db])
    assert result.exit_code == 3
    assert json.loads(result.stdout)["error"].startswith("Cannot reach the hub")
    wrong_key = runner.invoke(app, ["agent", "sync", "--hub", world["url"], "--key", "nope", "--db", db])
    assert wrong_key.exit_code == 3 and "refused the key" in wrong_key.stdout
