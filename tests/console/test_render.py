from __future__ import annotations

import io

from arimonitor.commands import render


def test_heading():
    assert render.heading("endpoints for client 101", 12) == "=== ENDPOINTS FOR CLIENT 101 (12) ==="
    assert render.heading("calls") == "=== CALLS ==="


def test_table_aligns_numbers_right_and_text_left():
    text = render.table([("1013010", "online", 3, None), ("1013011", "offline", 120, "10.0.0.5")],
                        ["endpoint", "state", "calls", "ip"], title="endpoints for client 101")
    assert text.split("\n") == [
        "=== ENDPOINTS FOR CLIENT 101 (2) ===",
        "endpoint  state    calls  ip",
        "--------  -------  -----  --------",
        "1013010   online       3  -",
        "1013011   offline    120  10.0.0.5",
    ]


def test_table_edge_cases():
    assert render.table([], ["a"], title="calls") == "=== CALLS (0) ===\n(none)"
    assert render.table([("x" * 100,)], max_width=10) == "x" * 9 + "…"
    assert render.table([(True, 1.5, 2.0)]) == "yes  1.5  2"
    assert render.table([("a", 1)], align="rl") == "a  1"


def test_durations_and_ages():
    assert [render.duration(s) for s in (0, 3, 192, 7260, 90000, None)] == \
        ["0s", "3s", "3m12s", "2h01m", "1d01h", "-"]
    now = 1_000_000.0
    assert [render.age(now - d, now) for d in (0.2, 5, 180, 7200, 4 * 86400)] == \
        ["now", "5s ago", "3m ago", "2h ago", "4d ago"]
    assert render.age(None) == "-"


def test_progress():
    assert render.progress_line("sweep", 1200, 3000, started=0.0, now=3.0) == \
        "sweep  1200/3000  40%  3s elapsed, ~4s left"
    assert render.progress_line("sweep", 5, None, started=0.0, now=1.0) == "sweep  5  1s elapsed"
    out = io.StringIO()
    bar = render.Progress("sweep", 10, stream=out, interval=0)
    bar.update(5)
    bar.finish(10)
    assert out.getvalue().splitlines()[-1].startswith("sweep  10/10  100%")
