"""A burst of calls into Stasis through the real reader and engine processes: every call is
continued exactly once and has exactly one history row, also across an engine kill -9 in the
middle of the burst (outputs.py: one commit per turn, `continue` after it, so a continued
call is in `active_calls`; a call that then ended unseen goes to the history at the next
start's resync, `prune_active`)."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.engine.stack import ctl
from tests.engine.test_stack import _status_soon, sim, stack  # noqa: F401 - fixtures
from tests.support import eventually, eventually_assert

pytestmark = pytest.mark.timeout(120)

CALLERS = ["1013010", "1123000", "1003000", "1013015", "1013020"]


def place(sim, n: int, start: int) -> list[str]:  # noqa: F811 - the fixture, passed on
    """n calls into Stasis (a number that is no endpoint), as fast as the control API takes them."""
    return [sim.control.call(CALLERS[i % len(CALLERS)], f"555{i:04d}") for i in range(start, start + n)]


def continues(sim) -> Counter:  # noqa: F811
    """Successful `continue`s per channel, as the simulated Asterisk saw them."""
    return Counter(r["path"].split("/")[2] for r in sim.control.requests()
                   if r["method"] == "POST" and r["path"].endswith("/continue")
                   and r["status"] == 204)


def history_channels(stack) -> Counter:  # noqa: F811
    rows = ctl(stack["address"], "history", "--limit", "10000")["data"]
    # a call's id is its first channel's; `channels` may list only those still with it
    return Counter(ch for row in rows for ch in {row["id"], *row["channels"]})


def assert_each_once(sim, stack, channels: list[str]) -> None:  # noqa: F811
    def check() -> None:
        done = continues(sim)
        assert {ch: done[ch] for ch in channels} == dict.fromkeys(channels, 1)
        rows = history_channels(stack)
        assert {ch: rows[ch] for ch in channels} == dict.fromkeys(channels, 1)
    eventually_assert(check, timeout=60)


def test_a_burst_of_stasis_calls_is_continued_once_and_recorded_once(sim, stack):  # noqa: F811
    channels = place(sim, 150, 0)
    assert_each_once(sim, stack, channels)
    counters = ctl(stack["address"], "stats")["data"]["counters"]
    assert counters["continue_failed"] == 0 and counters["continued"] >= 150


def test_engine_kill_9_mid_burst_keeps_once_and_once(sim, stack, processes):  # noqa: F811
    first = place(sim, 60, 0)
    # killed while it still works through the burst: some calls continued, some not yet
    eventually(lambda: continues(sim), timeout=20, interval=0.005)
    engine = stack["procs"]["engine"]
    os.killpg(engine.pid, signal.SIGKILL)
    engine.wait()
    during = place(sim, 30, 60)  # wait in Stasis while no engine runs: continued once seen
    env = {"ARIMONITOR_CONFIG": str(stack["ini"])}
    stack["procs"]["engine"] = processes.python("procs/call_engine.py", env=env,
                                                log=Path(stack["tmp"], "out", "engine2.out"))
    eventually(lambda: _status_soon(stack["address"]).get("last_resync"), timeout=20)
    after = place(sim, 60, 90)
    assert_each_once(sim, stack, first + during + after)
    rows = ctl(stack["address"], "history", "--limit", "10000")["data"]
    assert len({row["id"] for row in rows}) == len(rows) == 150
