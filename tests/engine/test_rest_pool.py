"""The REST pool for `continue`: once each, in order per key, results counted on the loop."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest

from arimonitor.ari.rest import AriHttpError
from arimonitor.engine.loop import Loop
from arimonitor.engine.outputs import dialplan_continuer
from arimonitor.engine.rest_pool import RestPool
from arimonitor.engine.state import Counters
from tests.support import eventually


class FakeAri:
    """One per pool thread, as LeanAri is: records what it was asked, by which thread."""

    made: ClassVar[list[FakeAri]] = []

    def __init__(self, log: list, fail: dict[str, int]) -> None:
        self.log, self.fail, self.closed = log, fail, False
        FakeAri.made.append(self)

    def post(self, path: str) -> None:
        self.log.append((path, threading.current_thread().name, id(self)))
        status = self.fail.get(path)
        if status:
            raise AriHttpError("POST", path, status, {"message": "no"})

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def loop():
    loop = Loop()
    yield loop
    loop.close()


def run_until(loop: Loop, check) -> None:
    eventually(lambda: check() or loop.run_once(0.01), 10)


def test_each_item_runs_once_in_order_per_key_and_results_come_back_on_the_loop(loop):
    log: list = []
    pool = RestPool(loop, "t-pool", 3, lambda: FakeAri(log, {}))
    done_threads: list[str] = []
    results: dict[str, list[int]] = {}
    for i in range(300):
        key = f"chan-{i % 7}"
        pool.submit(key, lambda ari, key=key, i=i: ari.post(f"/{key}/{i}") or i,
                    lambda result, error, key=key: (done_threads.append(threading.current_thread().name),
                                                    results.setdefault(key, []).append(result)))
    run_until(loop, lambda: pool.pending == 0)
    assert len(log) == 300 and len({path for path, _t, _c in log}) == 300, "each item once"
    for key, got in results.items():
        assert got == sorted(got), f"{key} out of order: {got}"
    by_key = {}
    for path, thread, client in log:
        by_key.setdefault(path.split("/")[1], set()).add((thread, client))
    assert all(len(owners) == 1 for owners in by_key.values()), "one key, one thread, one client"
    assert set(done_threads) == {threading.current_thread().name}, "done runs on the loop thread"
    assert pool.submitted == 300
    pool.stop()
    eventually(lambda: all(c.closed for c in FakeAri.made if c.log is log), 5)


def test_continue_failures_are_counted_and_a_gone_channel_is_not(loop):
    log: list = []
    fail = {"/channels/gone/continue": 404, "/channels/busy/continue": 409,
            "/channels/a%2Fb/continue": 500}
    pool = RestPool(loop, "t-cont", 2, lambda: FakeAri(log, fail))
    counters = Counters()
    continue_channel = dialplan_continuer(pool, counters)
    for channel in ("ok-1", "gone", "busy", "a/b", "ok-2"):
        continue_channel(channel)
    run_until(loop, lambda: pool.pending == 0)
    assert sorted(path for path, _t, _c in log) == sorted(
        ["/channels/ok-1/continue", "/channels/gone/continue", "/channels/busy/continue",
         "/channels/a%2Fb/continue", "/channels/ok-2/continue"])
    assert counters.continued == 2 and counters.continue_failed == 2
    pool.stop()


def test_a_failing_result_handler_does_not_lose_the_others(loop):
    pool = RestPool(loop, "t-bad", 1, lambda: FakeAri([], {}))
    seen = []

    def bad(_result, _error):
        raise RuntimeError("boom")

    pool.submit("k", lambda ari: 1, bad)
    pool.submit("k", lambda ari: 2, lambda result, _e: seen.append(result))
    run_until(loop, lambda: pool.pending == 0)
    assert seen == [2]
    pool.stop()
