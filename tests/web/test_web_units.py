"""The UI's small parts without servers: background counts, sessions, charts."""

from __future__ import annotations

import threading
import time

from hashhub.web.charts import bar_chart
from hashhub.web.hub_queries import Cached
from hashhub.web.session import Sessions


def test_a_slow_count_never_holds_a_page_and_stale_figures_are_served_while_recounting() -> None:
    release = threading.Event()
    calls: list[str] = []

    def count(key: str) -> str:
        calls.append(key)
        release.wait(5)
        return f"{key}-{len(calls)}"

    cached = Cached(count, ttl=0.0)
    started = time.monotonic()
    assert cached.get("scope", wait=0.05) is None  # the page says "counting" instead of waiting
    assert time.monotonic() - started < 1
    release.set()
    assert cached.get("scope", wait=5) == "scope-1"
    release.clear()
    assert cached.get("scope", wait=5) == "scope-1"  # stale (ttl 0): served while a recount runs
    release.set()
    deadline = time.monotonic() + 5
    while cached.get("scope") != "scope-2" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cached.get("scope") == "scope-2"


def test_a_failing_count_is_retried_on_the_next_visit() -> None:
    outcomes = iter([RuntimeError("database busy"), "ok"])

    def count(_key: str) -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    cached = Cached(count)
    assert cached.get("scope", wait=2) is None
    assert cached.get("scope", wait=2) == "ok"


def test_sessions_end_when_idle_or_closed_and_ids_are_unguessable() -> None:
    sessions = Sessions(idle=0.2)
    one, two = sessions.open("key-1"), sessions.open("key-1")
    assert one.token != two.token and one.csrf != two.csrf and len(one.token) >= 40
    assert sessions.find(one.token) is one and sessions.find("made-up") is None
    sessions.close(one.token)
    assert sessions.find(one.token) is None
    time.sleep(0.3)
    assert sessions.find(two.token) is None


def test_session_store_stays_bounded() -> None:
    sessions = Sessions(limit=3)
    opened = [sessions.open(f"key-{n}") for n in range(5)]
    assert sum(sessions.find(s.token) is not None for s in opened) == 3
    assert sessions.find(opened[-1].token) is not None


def test_bar_chart_scales_to_the_largest_value() -> None:
    chart = bar_chart([("a", 0), ("b", 5), ("c", 10)], width=300, height=100)
    assert chart.top == 10 and [b.height for b in chart.bars] == [0, 50, 100]
    assert [b.y for b in chart.bars] == [100, 50, 0]
    assert bar_chart([]).bars == () and bar_chart([("a", 0)]).top == 1
