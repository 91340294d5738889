"""The demo, step by step, through the product's own commands and HTTP API.

1. `hashhub hub org create` a demo contributor and a demo member, `hashhub hub list create` a list;
2. `hashhub hub serve` on loopback; the contributor submits the demo photos' hashes (POST /items);
3. `hashhub agent serve --hub ... --key ...` follows the hub and loads the list;
4. print the URLs, the keys and a ready `curl` that scans a demo photo and shows the match.

With `check=True` the printed scan is run once, then both servers stop (what the tests and `make
demo`-style smoke checks use); otherwise it runs until Ctrl-C.
"""

from __future__ import annotations

import json
import secrets
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from hashhub import servers
from hashhub.hashing import hash_path

HASHHUB = [sys.executable, "-c", "from hashhub.cli import main; main()"]
CONTRIBUTOR, MEMBER, LIST = "demo-hotline", "demo-platform", "demo"
PHOTOS = resources.files("hashhub.demo").joinpath("photos")


class DemoError(RuntimeError):
    """The demo could not start; the message says which step failed and where its log is."""


@dataclass
class DemoInfo:
    workdir: Path
    hub_url: str
    agent_url: str
    contributor_key: str
    member_key: str
    agent_key: str
    photo: Path
    curl: str


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise DemoError("No free TCP port on 127.0.0.1.")


def _cli(*args: str) -> Any:
    result = subprocess.run([*HASHHUB, *args], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise DemoError(f"`hashhub {' '.join(args)}` failed: {result.stderr.strip()[-800:]}")
    return json.loads(result.stdout)


@contextmanager
def _server(args: list[str], health: str, log: Path) -> Iterator[subprocess.Popen]:
    with open(log, "w") as out:
        # Own process group: Ctrl-C in the terminal reaches the demo, which stops the servers in order.
        proc = subprocess.Popen(
            [*HASHHUB, *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        try:
            servers.wait_healthy(health, proc, timeout=90)
        except servers.ServerNotReady as exc:
            raise DemoError(f"`hashhub {' '.join(args[:2])}` did not start ({exc}); see {log}.") from None
        yield proc
    finally:
        servers.stop(proc, timeout=15)


def _photos() -> list[Path]:
    return sorted(Path(str(p)) for p in PHOTOS.iterdir() if p.name.endswith(".jpg"))


def _submit(hub_url: str, key: str, photos: list[Path]) -> list[str]:
    items = []
    for photo in photos:
        hashed = hash_path(photo)
        items.append(
            {
                "external_id": f"demo-{photo.stem}",
                "content_type": "image",
                # A stand-in grade: the demo list pretends these benign photos are verified items.
                "classification": {"scheme": "industry", "value": "A1"},
                "verification": {"reviewers": 2},
                "labels": {"demo": True},
                "fingerprints": {k: v for k, v in hashed.hashes.items() if k in ("md5", "sha1", "pdq")},
            }
        )
    answer = httpx.post(
        f"{hub_url}/api/v1/items",
        json={"list": LIST, "items": items},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    if answer.status_code != 200:
        raise DemoError(f"The hub refused the demo list ({answer.status_code}): {answer.text[:300]}")
    return [entry["id"] for entry in answer.json()["items"]]


def _wait_loaded(agent_url: str, key: str, count: int) -> None:
    deadline = time.monotonic() + 60
    headers = {"Authorization": f"Bearer {key}"}
    while time.monotonic() < deadline:
        httpx.post(f"{agent_url}/api/v1/sync", headers=headers, timeout=60)
        if httpx.get(f"{agent_url}/healthz", timeout=5).json().get("items", 0) >= count:
            return
        time.sleep(0.5)
    raise DemoError(f"The agent did not load the {count} demo items within 60 s.")


def scan_photo(info: DemoInfo) -> dict[str, Any]:
    """What the printed curl command does."""
    with open(info.photo, "rb") as handle:
        answer = httpx.post(
            f"{info.agent_url}/api/v1/scan",
            headers={"Authorization": f"Bearer {info.agent_key}"},
            files={"file": (info.photo.name, handle.read(), "image/jpeg")},
            timeout=30,
        )
    answer.raise_for_status()
    return answer.json()


def banner(info: DemoInfo, photo_count: int) -> str:
    return "\n".join(
        [
            f"hashhub demo is running (Ctrl-C stops it). Files and logs: {info.workdir}",
            "",
            f"  hub:    {info.hub_url}    (OpenAPI: {info.hub_url}/docs)",
            f"  agent:  {info.agent_url}    (OpenAPI: {info.agent_url}/docs)",
            "",
            f"  contributor {CONTRIBUTOR} key: {info.contributor_key}",
            f"  member      {MEMBER} key: {info.member_key}",
            f"  agent API key:                 {info.agent_key}",
            "",
            f"  list {LIST!r}: {photo_count} benign photos ({PHOTOS}; Caltech 101, CC BY 4.0, see NOTICE.md)",
            "",
            "Scan a photo with the agent (it is on the demo list, so it matches):",
            "",
            f"  {info.curl}",
            "",
        ]
    )


def run_demo(
    workdir: Path,
    *,
    hub_port: int = 8000,
    agent_port: int = 8100,
    check: bool = False,
    out: Callable[[str], None] = print,
) -> dict[str, Any] | None:
    """Start everything, print how to use it; with `check`, scan once and return the answer."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("hub.db", "agent.db"):  # a rerun in the same folder starts from scratch
        for suffix in ("", "-wal", "-shm"):
            (workdir / f"{name}{suffix}").unlink(missing_ok=True)
    hub_db, agent_db = f"sqlite:///{workdir / 'hub.db'}", f"sqlite:///{workdir / 'agent.db'}"
    contributor = _cli("hub", "org", "create", CONTRIBUTOR, "--role", "contributor", "--db", hub_db)
    member = _cli("hub", "org", "create", MEMBER, "--role", "member", "--db", hub_db)
    _cli("hub", "list", "create", LIST, "--read", MEMBER, "--write", CONTRIBUTOR, "--db", hub_db)

    hub_port, agent_port = _free_port(hub_port), _free_port(agent_port)
    hub_url, agent_url = f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{agent_port}"
    agent_key = "agent_" + secrets.token_urlsafe(18)
    photos = _photos()
    with ExitStack() as stack:
        hub = stack.enter_context(
            _server(
                ["hub", "serve", "--db", hub_db, "--port", str(hub_port)],
                f"{hub_url}/healthz",
                workdir / "hub.log",
            )
        )
        _submit(hub_url, contributor["api_key"], photos)
        agent_args = [
            "agent", "serve", "--db", agent_db, "--port", str(agent_port), "--hub", hub_url,
            "--key", member["api_key"], "--api-key", agent_key, "--sync-interval", "10",
        ]  # fmt: skip
        agent = stack.enter_context(_server(agent_args, f"{agent_url}/healthz", workdir / "agent.log"))
        _wait_loaded(agent_url, agent_key, len(photos))
        photo = photos[2] if len(photos) > 2 else photos[0]
        curl = (
            f"curl -s -H {shlex.quote('Authorization: Bearer ' + agent_key)} "
            f"-F {shlex.quote('file=@' + str(photo))} {agent_url}/api/v1/scan"
        )
        info = DemoInfo(
            workdir, hub_url, agent_url, contributor["api_key"], member["api_key"], agent_key, photo, curl
        )
        out(banner(info, len(photos)))
        if check:
            answer = scan_photo(info)
            first = (answer.get("matches") or [{}])[0]
            out(
                f"check: {photo.name} -> matched={answer['matched']} action={answer['action']} "
                f"item={first.get('item')} distance={first.get('distance')} in {answer.get('elapsed_ms')} ms"
            )
            return answer
        try:
            while hub.poll() is None and agent.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            out("stopping the demo...")
            return None
        raise DemoError(f"A demo server stopped unexpectedly; see {workdir / 'hub.log'} and agent.log.")
    return None
