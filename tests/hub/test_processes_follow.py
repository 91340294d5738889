"""Two real `hashhub hub serve` processes on one database (issue 12): submits and withdrawals made
through process A while other clients keep matching show up at process B within a second, a
withdrawn item never matches again after that, and both processes answer the same queries alike."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from tests.agent.procs import free_port, server
from tests.hub.conftest import flip_bits, item
from tests.support.hubs import contributor_and_member

#: the promise under test: a committed change is visible at every process within this many seconds.
FOLLOW_S = 1.0
CHANGES = 12
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class Pair:
    a: str
    b: str
    contrib: str
    member: str
    stop: threading.Event = field(default_factory=threading.Event)

    def client(self, base: str, key: str) -> httpx.Client:
        return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    url = (
        f"sqlite:///{tmp_path / 'hub.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    keys = contributor_and_member(url)
    contrib, member = keys["contrib"], keys["plat"]
    with ExitStack() as stack:
        bases = []
        for name in "ab":
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            args = ("hub", "serve", "--db", url, "--port", str(port))
            stack.enter_context(server(*args, health=f"{base}/healthz", log=tmp_path / f"{name}.log"))
            bases.append(base)
        yield Pair(bases[0], bases[1], contrib, member)


def _items(client: httpx.Client, pdq: str) -> list[str]:
    r = client.post("/api/v1/match", json={"fingerprints": [{"pdq": pdq}]})
    assert r.status_code == 200, r.text
    return [m["item"] for m in r.json()["results"][0]["matches"]]


def _until(client: httpx.Client, pdq: str, item_id: str, present: bool, acked: float) -> float:
    """Seconds from `acked` until `item_id` is (or is no longer) among the matches for `pdq`;
    fails once FOLLOW_S has passed without it."""
    while (item_id in _items(client, pdq)) != present:
        waited = time.perf_counter() - acked
        assert waited <= FOLLOW_S, f"process B had not caught up {waited:.2f}s after the change"
    return time.perf_counter() - acked


def _background_load(pair: Pair, errors: list[str]) -> None:
    """Other contributors' submits through B and members' matches at A, while the test runs."""
    rng = random.Random(3)
    with pair.client(pair.b, pair.contrib) as writer, pair.client(pair.a, pair.member) as reader:
        n = 0
        while not pair.stop.is_set():
            n += 1
            r = writer.post("/api/v1/items", json={"list": "verified", "items": [item(f"bg-{n}")]})
            if r.status_code != 200:
                errors.append(f"background submit: {r.status_code} {r.text}")
            _items(reader, f"{rng.getrandbits(256):064x}")


def _withdrawn_never_match(
    pair: Pair, withdrawn: dict[str, tuple[str, float]], checked: set[str], errors: list[str]
) -> None:
    """Keep asking both processes for every withdrawn item's hash, from FOLLOW_S after its withdrawal."""
    with pair.client(pair.a, pair.member) as a, pair.client(pair.b, pair.member) as b:
        while not pair.stop.is_set():
            for item_id, (pdq, acked) in list(withdrawn.items()):
                if time.perf_counter() - acked <= FOLLOW_S:
                    continue
                for name, client in (("A", a), ("B", b)):
                    if item_id in _items(client, pdq):
                        errors.append(f"{name} matched withdrawn item {item_id}")
                checked.add(item_id)
            time.sleep(0.02)


def test_changes_through_one_process_reach_the_other_within_a_second(pair: Pair) -> None:
    errors: list[str] = []
    withdrawn: dict[str, tuple[str, float]] = {}
    checked: set[str] = set()
    threads = [
        threading.Thread(target=_background_load, args=(pair, errors)),
        threading.Thread(target=_withdrawn_never_match, args=(pair, withdrawn, checked, errors)),
    ]
    for t in threads:
        t.start()
    lags: list[float] = []
    submitted: list[str] = []
    try:
        with pair.client(pair.a, pair.contrib) as a, pair.client(pair.b, pair.member) as b:
            for n in range(CHANGES):
                row = item(f"follow-{n}")
                pdq = row["fingerprints"]["pdq"]
                r = a.post("/api/v1/items", json={"list": "verified", "items": [row]})
                assert r.status_code == 200, r.text
                acked = time.perf_counter()
                item_id = r.json()["items"][0]["id"]
                lags.append(_until(b, pdq, item_id, True, acked))
                submitted.append(pdq)
                if n % 2:  # withdraw every other one
                    r = a.post(f"/api/v1/items/{item_id}/withdraw", json={"reason": "listed in error"})
                    assert r.status_code == 200, r.text
                    acked = time.perf_counter()
                    withdrawn[item_id] = (pdq, acked)
                    lags.append(_until(b, pdq, item_id, False, acked))
            time.sleep(FOLLOW_S + 0.3)  # let the watcher check the last withdrawal too
    finally:
        pair.stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[:5]
    assert checked == set(withdrawn)  # the watcher did look at every withdrawn item after its second
    assert max(lags) <= FOLLOW_S

    # The same queries at both processes: listed, near-duplicate, withdrawn and random hashes.
    rng = random.Random(9)
    queries = [
        {"pdq": p}
        for p in [
            *submitted,
            *(flip_bits(p, 9) for p in submitted),
            *(f"{rng.getrandbits(256):064x}" for _ in range(5)),
        ]
    ]
    answers = []
    for base in (pair.a, pair.b):
        with pair.client(base, pair.member) as c:
            r = c.post("/api/v1/match", json={"fingerprints": queries})
            assert r.status_code == 200, r.text
            answers.append(r.json()["results"])
    assert answers[0] == answers[1]
    found = sum(bool(res["matches"]) for res in answers[0][: len(submitted)])
    assert found == CHANGES - len(withdrawn)
