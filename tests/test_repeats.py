"""A repeated failure is logged once, then as a count, with a bounded line."""

from __future__ import annotations

import logging

from arimonitor.repeats import MAX_TEXT, RepeatedFailure


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_once_then_counted_bounded_and_quiet_during_the_start_up_grace(caplog):
    clock = Clock()
    failures = RepeatedFailure(logging.getLogger("t"), "resync", grace=20, remind=600, clock=clock)
    caplog.set_level(logging.INFO)
    for _ in range(5):          # Asterisk not up yet at start-up: one INFO line, no warning
        failures.failed("Connection refused")
        clock.t += 2
    assert [r.levelname for r in caplog.records] == ["INFO"]
    clock.t += 20
    for _ in range(1000):       # an outage that goes on: a warning, then counts at 10, 100, 1000
        failures.failed("retry " * 500)
        clock.t += 0.1
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 4
    assert warnings[0].startswith("resync failed (6 times in")
    assert "still failing: 10 times" in warnings[1] and "still failing: 1000 times" in warnings[3]
    assert max(len(m) for m in warnings) < MAX_TEXT + 100
    failures.succeeded()
    assert "works again after 1005 failure(s)" in caplog.records[-1].getMessage()
    caplog.clear()
    failures.failed("down again")  # a new episode after the grace: a warning at once
    assert [r.levelname for r in caplog.records] == ["WARNING"]
