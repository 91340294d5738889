"""The UI's small parts without servers: sessions, charts."""

from __future__ import annotations

import time

from hashhub.web.charts import bar_chart
from hashhub.web.session import Sessions


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
