"""A real hub and a real agent on loopback, with benign corpus photos listed, and a headless Chromium.

The hub lists 12 ordinary photos (stand-ins for known items: 10 verified, 2 unverified); the agent
follows it with a member key and has scanned three of them, so its review queue holds two entries.
Set HASHHUB_SCREENSHOTS=DIR to save PNGs of the main pages while the tests run (docs/make_screenshots.py).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hashhub.hub import orgs
from hashhub.hub.core import Hub
from hashhub.hub.settings import HubSettings
from tests.agent.procs import HASHHUB, env, free_port, stop, wait_http

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AGENT_KEY = "agent-web-test-key"
#: seconds a server may take to answer: generous, the test machine's two cores are shared.
START_TIMEOUT = 240


@contextmanager
def server(*args: str, health: str, log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """`hashhub ARGS...` in the background until it answers at `health`; Ctrl-C'd afterwards."""
    with open(log, "w") as out:
        proc = subprocess.Popen([*HASHHUB, *args], stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_http(health, proc, timeout=START_TIMEOUT)
            yield proc
        finally:
            stop(proc)


@dataclass
class World:
    hub: str
    agent: str
    keys: dict[str, str]
    rows: list[dict[str, str]]
    ids: list[str]

    def api(self, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        return httpx.request(method, f"{self.hub}{path}", headers=headers, timeout=60, **kw)


def _rows(corpus: Path, count: int) -> list[dict[str, str]]:
    with open(corpus / "photos.reference.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["pdq"] and int(r["pdq_quality"]) >= 80]
    return rows[::37][:count]


@pytest.fixture(scope="session")
def world(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("web")
    hub_db = f"sqlite:///{tmp / 'hub.db'}"
    # Organisations and the list are made in-process with the services the CLI calls (a CLI process
    # per command costs seconds on a busy machine); the servers below are real processes.
    setup = Hub(HubSettings(db=hub_db))
    keys = {
        name: orgs.create_org(setup.engine, name, [role])["api_key"]
        for name, role in {"hub-admin": "admin", "hotline": "contributor", "platform": "member"}.items()
    }
    orgs.create_list(setup.engine, "verified", read=["platform"], write=["hotline"])
    setup.close()
    rows = _rows(corpus, 12)
    hub_port, agent_port = free_port(), free_port()
    hub_url, agent_url = f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{agent_port}"
    # One member's negative feedback disputes an item, so one browser session can show a dispute.
    hub_env = env(HASHHUB_DISPUTE_THRESHOLD="1")
    hub_cmd = ("hub", "serve", "--db", hub_db, "--port", str(hub_port))
    with server(*hub_cmd, health=f"{hub_url}/healthz", log=tmp / "hub.log", env=hub_env):
        items = [
            {
                "external_id": row["file"],
                "content_type": "image",
                "classification": {"scheme": "industry", "value": "A1" if n % 3 else "B1"},
                "verification": {"reviewers": 0 if n >= 10 else 2},
                "labels": {},
                "fingerprints": {"pdq": row["pdq"], "md5": row["md5"]},
            }
            for n, row in enumerate(rows)
        ]
        answer = httpx.post(
            f"{hub_url}/api/v1/items",
            json={"list": "verified", "items": items},
            headers={"Authorization": f"Bearer {keys['hotline']}"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        ids = [entry["id"] for entry in answer.json()["items"]]
        agent_cmd = (
            "agent",
            "serve",
            "--hub",
            hub_url,
            "--key",
            keys["platform"],
            "--api-key",
            AGENT_KEY,
            "--sync-interval",
            "0",
            "--port",
            str(agent_port),
            "--db",
            f"sqlite:///{tmp / 'agent.db'}",
        )
        with server(*agent_cmd, health=f"{agent_url}/healthz", log=tmp / "agent.log", env=env()):
            auth = {"Authorization": f"Bearer {AGENT_KEY}"}
            synced = httpx.post(f"{agent_url}/api/v1/sync", headers=auth, timeout=60)
            assert synced.status_code == 200 and synced.json()["items"] == 12, synced.text
            for row in (rows[10], rows[11], rows[0]):  # two unverified (review), one verified (block)
                body = {"fingerprints": {"pdq": row["pdq"]}, "file": f"upload-{row['file']}"}
                scanned = httpx.post(f"{agent_url}/api/v1/scan", json=body, headers=auth, timeout=60)
                assert scanned.status_code == 200 and scanned.json()["matched"], scanned.text
            yield World(hub_url, agent_url, {**keys, "agent": AGENT_KEY}, rows, ids)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own cookies) per test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def other_page(browser: Any) -> Iterator[Any]:
    """A second person's browser, signed in separately."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def shot(page: Any, name: str) -> None:
    """Save a full-page PNG when HASHHUB_SCREENSHOTS names a folder (docs/make_screenshots.py)."""
    folder = os.environ.get("HASHHUB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Your").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def unlabelled(page: Any) -> list[str]:
    """Form controls on the page that assistive technology cannot name (no label, no aria-label)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !(el.tagName === 'BUTTON' && el.textContent.trim()))
            .map(el => el.outerHTML.slice(0, 120))"""
    )
