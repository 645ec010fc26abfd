"""Old ledger rows go at start and then periodically from the consumer, not only at start."""

from __future__ import annotations

import json
import logging

from arimonitor.clicktocall import consumer as C
from arimonitor.clicktocall import ledger as L
from arimonitor.clicktocall.request import parse_request


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def req(rid: str):
    body = {"request_id": rid, "client": "101", "origin": "1013010", "destination": "1123000"}
    return parse_request(json.dumps(body).encode())


def test_prune_removes_rows_older_than_keep_final_while_running(tmp_path):
    clock = Clock()
    ledger = L.Ledger(tmp_path / "ledger.sqlite", clock=clock)
    try:
        ledger.reserve(req("old"), None)
        ledger.finish("old", {"result": "failed"})
        clock.t += L.KEEP_FINAL - 10
        ledger.reserve(req("new"), None)
        assert ledger.prune() == 0
        clock.t += 20  # "old" is now past KEEP_FINAL, "new" is not
        assert ledger.prune() == 1
        assert ledger.get("old") is None and ledger.get("new") is not None
    finally:
        ledger.close()


class CountingLedger:
    def __init__(self) -> None:
        self.pruned = 0

    def prune(self) -> int:
        self.pruned += 1
        return 0


def test_the_consumer_prunes_at_most_once_per_interval():
    ledger = CountingLedger()
    session = C.ConsumerSession([], C.ConsumerSettings(results_exchange="x"), placer=None,
                                ledger=ledger, listener=None, stopper=None,
                                log=logging.getLogger("t"))
    try:
        start = session._next_prune - C.PRUNE_EVERY
        assert C.PRUNE_EVERY >= 60
        assert not session._maybe_prune(start + 1)  # the ledger pruned itself when opened
        assert session._maybe_prune(start + C.PRUNE_EVERY)
        assert not session._maybe_prune(start + C.PRUNE_EVERY + 59)
        assert session._maybe_prune(start + 2 * C.PRUNE_EVERY)
        assert ledger.pruned == 2
    finally:
        session.executor.shutdown()
