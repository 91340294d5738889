"""`hashhub hub serve --workers 2` forks its workers from one loaded process (issue 12): a worker
that dies is replaced and the server keeps answering, SIGTERM stops every process, and the workers
share the pages the parent loaded instead of each holding a copy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from tests.agent.procs import free_port, server
from tests.hub.conftest import item
from tests.support.hubs import contributor_and_member

WORKERS = 2


def _workers(proc: psutil.Process) -> set[int]:
    return {p.pid for p in proc.children() if p.status() != psutil.STATUS_ZOMBIE}


def _wait_workers(proc: psutil.Process, count: int, timeout: float = 60) -> set[int]:
    deadline = time.monotonic() + timeout
    while len(pids := _workers(proc)) != count:
        assert time.monotonic() < deadline, f"expected {count} workers, saw {len(pids)}"
        time.sleep(0.05)
    return pids


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[psutil.Process, str, dict[str, str]]]:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    keys = contributor_and_member(url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ("hub", "serve", "--db", url, "--port", str(port), "--workers", str(WORKERS))
    with server(*args, health=f"{base}/healthz", log=tmp_path / "hub.log") as proc:
        parent = psutil.Process(proc.pid)
        _wait_workers(parent, WORKERS)
        yield parent, base, keys


def _answering(base: str, key: str, pdq: str, connections: int = 8) -> list[list[str]]:
    """Matched item ids for `pdq` over several fresh connections (spread over the workers)."""
    out = []
    for _ in range(connections):
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            r = c.post("/api/v1/match", json={"fingerprints": [{"pdq": pdq}]})
            assert r.status_code == 200, r.text
            out.append([m["item"] for m in r.json()["results"][0]["matches"]])
    return out


def _submit(base: str, key: str, name: str) -> tuple[str, str]:
    row = item(name)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        r = c.post("/api/v1/items", json={"list": "verified", "items": [row]})
    assert r.status_code == 200, r.text
    return r.json()["items"][0]["id"], row["fingerprints"]["pdq"]


def test_workers_are_forked_children_of_one_server(hub: tuple[psutil.Process, str, dict[str, str]]) -> None:
    parent, _base, _keys = hub
    for pid in _workers(parent):
        worker = psutil.Process(pid)
        assert worker.ppid() == parent.pid
        assert worker.cmdline() == parent.cmdline()  # forked, not a fresh interpreter spawned


def test_a_killed_worker_is_replaced_and_the_server_keeps_answering(
    hub: tuple[psutil.Process, str, dict[str, str]],
) -> None:
    parent, base, keys = hub
    item_id, pdq = _submit(base, keys["contrib"], "before-kill")
    victim = min(_workers(parent))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while victim in (pids := _workers(parent)) or len(pids) != WORKERS:
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.05)
    # The new worker forked from the parent's (older) state and caught up from the change log.
    time.sleep(1.0)
    assert all(found == [item_id] for found in _answering(base, keys["plat"], pdq, connections=12))
    new_id, new_pdq = _submit(base, keys["contrib"], "after-kill")
    time.sleep(1.0)
    assert all(found == [new_id] for found in _answering(base, keys["plat"], new_pdq, connections=12))


def test_sigterm_stops_the_server_and_every_worker(hub: tuple[psutil.Process, str, dict[str, str]]) -> None:
    parent, _base, _keys = hub
    workers = [psutil.Process(pid) for pid in _workers(parent)]
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(30) == 0
    _gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers left running: {[p.pid for p in alive]}"


def test_a_submit_matches_at_both_workers_within_a_second_and_they_answer_alike(
    hub: tuple[psutil.Process, str, dict[str, str]],
) -> None:
    _parent, base, keys = hub
    item_id, pdq = _submit(base, keys["contrib"], "fresh")
    acked = time.monotonic()
    while True:
        answers = _answering(base, keys["plat"], pdq, connections=6)
        if all(found == [item_id] for found in answers):
            break
        assert time.monotonic() - acked <= 1.0, f"not matchable everywhere within 1 s: {answers}"


def test_workers_share_the_parents_pages(hub: tuple[psutil.Process, str, dict[str, str]]) -> None:
    parent, base, keys = hub
    _answering(base, keys["plat"], "0" * 64)
    for pid in _workers(parent):
        info = psutil.Process(pid).memory_full_info()
        # A spawned worker holds ~150 MB of its own (interpreter, numpy, numba, the app); a forked
        # one has most of its resident pages in common with the parent.
        assert info.uss < info.rss / 2, f"worker {pid}: {info.uss >> 20} MB own of {info.rss >> 20} MB"


def test_workers_exit_when_the_server_is_killed(hub: tuple[psutil.Process, str, dict[str, str]]) -> None:
    parent, _base, _keys = hub
    workers = [psutil.Process(pid) for pid in _workers(parent)]
    parent.kill()  # no chance to stop them itself: the kernel tells them
    _gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"orphaned workers kept running: {[p.pid for p in alive]}"


def test_the_parent_imports_what_a_workers_event_loop_needs_and_leaves_no_loop_or_thread() -> None:
    # In a fresh interpreter: the modules a worker's loop would import on first use are imported
    # before the fork (shared pages), and nothing keeps running that a fork would copy half-way.
    script = (
        "import asyncio, json, sys, threading, uvicorn\n"
        "from hashhub.hub import prefork\n"
        "config = uvicorn.Config(app=None, loop='auto')\n"
        "before = {'uvloop', 'anyio._backends._asyncio'} & set(sys.modules)\n"
        "prefork.warm_event_loop(config)\n"
        "after = {'uvloop', 'anyio._backends._asyncio'} & set(sys.modules)\n"
        "try:\n"
        "    asyncio.get_running_loop()\n"
        "    running = True\n"
        "except RuntimeError:\n"
        "    running = False\n"
        "print(json.dumps([sorted(before), sorted(after), threading.active_count(), running]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    before, after, threads, running = json.loads(out.splitlines()[-1])
    assert before == []
    assert after == ["anyio._backends._asyncio", "uvloop"]
    assert (threads, running) == (1, False)
