"""The hashhub extension for python-threatexchange: its real CLI fetches a live hub, and the exchange
resumes from its checkpoint, sees withdrawals as deletes and reports opinions as hub feedback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from threatexchange.exchanges import fetch_state as state
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal

from hashhub.integrations.threatexchange import (
    HashhubCollabConfig,
    HashhubCredentials,
    HashhubSignalExchangeAPI,
)
from tests.compat.conftest import Listed
from tests.hub.conftest import World, item

TX = Path(sys.executable).with_name("threatexchange")


def tx(home: Path, key: str, *args: str) -> str:
    """Run the real `threatexchange` command line with its state under `home`."""
    env = {**os.environ, "HOME": str(home), "TX_HASHHUB_KEY": key}
    done = subprocess.run([str(TX), *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_threatexchange_cli_fetches_the_hub_through_the_extension(listed: Listed, tmp_path: Path) -> None:
    key = listed.key("plat")
    tx(tmp_path, key, "config", "extensions", "add", "hashhub.integrations.threatexchange")
    tx(tmp_path, key, "config", "collab", "edit", "hashhub", "my-hub", "--create", "--hub-url", listed.url)
    tx(tmp_path, key, "fetch")
    printed = tx(tmp_path, key, "dataset", "--print-signals", "--print-signals-only")
    got = {tuple(line.split()[:2]) for line in printed.splitlines() if line.strip()}

    expected = listed.expected().values()
    want = {("pdq", d["fingerprints"]["pdq"]) for d in expected if d["content_type"] == "image"}
    want |= {("video_md5", d["fingerprints"]["md5"]) for d in expected if d["content_type"] == "video"}
    assert got == want


def exchange(world: World, org: str = "plat", **config: object) -> HashhubSignalExchangeAPI:
    collab = HashhubCollabConfig(name="hub", hub_url=world.url, **config)  # type: ignore[arg-type]
    return HashhubSignalExchangeAPI.for_collab(collab, HashhubCredentials(world.keys[org]))


def fetch(api: HashhubSignalExchangeAPI, into: dict, checkpoint: object = None) -> object:
    for delta in api.fetch_iter([PdqSignal, VideoMD5Signal], checkpoint):  # type: ignore[arg-type]
        api.naive_fetch_merge(into, delta.updates)
        checkpoint = delta.checkpoint
    return checkpoint


def test_resume_from_checkpoint_sees_withdrawals_and_new_items(fresh: World) -> None:
    a, b = fresh.submit_ok("iwf", [item(1), item(2)])
    api = exchange(fresh)
    held: dict = {}
    checkpoint = fetch(api, held)
    assert set(held) == {a, b}

    fresh.client("iwf").post(f"/api/v1/items/{a}/withdraw", json={"reason": "mistake"})
    (c,) = fresh.submit_ok("ncmec", [item(3, grade="B1")])
    later = fetch(api, held, checkpoint)
    assert later.cursor > checkpoint.cursor  # type: ignore[attr-defined]
    assert set(held) == {b, c}
    signals = api.naive_convert_to_signal_type([PdqSignal], api.collab, held)[PdqSignal]
    assert {m.contributors.popitem()[1].pop() for m in signals.values()} == {"industry:A1", "industry:B1"}


def test_list_filter_and_access_rules(fresh: World) -> None:
    fresh.submit_ok("ncmec", [item("r")], "restricted")
    (v,) = fresh.submit_ok("iwf", [item("v")])
    held: dict = {}
    fetch(exchange(fresh, lists={"verified"}), held)
    assert set(held) == {v}
    try:
        fetch(exchange(fresh, lists={"restricted"}), {})
    except Exception as exc:  # the hub's 403, passed on with its reason
        assert "403" in str(exc) and "restricted" in str(exc)
    else:
        raise AssertionError("reading a list without a grant should fail")


def test_opinions_become_hub_feedback(fresh: World) -> None:
    a, b = fresh.submit_ok("iwf", [item(1), item(2)])
    api = exchange(fresh)
    pdq = {i: fresh.client("plat").get(f"/api/v1/items/{i}").json()["fingerprints"]["pdq"] for i in (a, b)}
    api.report_opinion(
        PdqSignal, pdq[a], state.SignalOpinion(True, state.SignalOpinionCategory.NEGATIVE_CLASS, set())
    )
    api.report_opinion(
        PdqSignal, pdq[b], state.SignalOpinion(True, state.SignalOpinionCategory.POSITIVE_CLASS, set())
    )
    assert fresh.client("iwf").get(f"/api/v1/items/{a}").json()["feedback"] == {"negative": 1}
    assert fresh.client("iwf").get(f"/api/v1/items/{b}").json()["feedback"] == {"affirmative": 1}
