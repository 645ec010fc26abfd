"""Each request message gets its own final reply, once; the catch-up finds open requests."""

from __future__ import annotations

import json

from arimonitor.clicktocall import ledger as L
from arimonitor.clicktocall.request import parse_request


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def req(rid: str, corr: str | None = None, reply_to: str | None = "replies", client: str = "101"):
    body = {"request_id": rid, "client": client, "origin": "1013010", "destination": "1123000"}
    return parse_request(json.dumps(body).encode(), reply_to, corr)


FINAL = {"request_id": "r1", "event": "final", "result": "completed", "duration": 12.0}


def test_the_same_request_id_twice_gets_one_reply_per_message(tmp_path):
    ledger = L.Ledger(tmp_path / "l.sqlite")
    assert ledger.reserve(req("r1", "first"), None) == L.NEW
    # Back to back: the first is still originating, so the second goes to Asterisk too (409).
    assert ledger.reserve(req("r1", "second"), None) == L.RESUME
    ledger.accepted("r1")
    assert ledger.reserve(req("r1", "third"), None) == L.DUPLICATE
    final = ledger.finish("r1", FINAL)
    assert sorted(r.correlation_id for r in final.routes) == ["first", "second", "third"]
    assert not final.results_sent
    for route in final.routes:
        ledger.sent(route)
    ledger.results_sent("r1")
    # The engine publishes the final again (catch-up, restart): nothing left to send.
    again = ledger.finish("r1", {**FINAL, "duration": 99.0})
    assert again.routes == () and again.results_sent
    assert again.outcome["duration"] == 12.0, "the first final stored wins"
    assert ledger.unsent() == []


def test_a_third_message_after_the_final_gets_the_stored_final(tmp_path):
    ledger = L.Ledger(tmp_path / "l.sqlite")
    ledger.reserve(req("r1", "first"), None)
    ledger.accepted("r1")
    for route in ledger.finish("r1", FINAL).routes:
        ledger.sent(route)
    assert ledger.reserve(req("r1", "late"), None) == L.DUPLICATE
    (route,) = ledger.final("r1").routes
    assert route.correlation_id == "late"
    # A redelivery of the answered first message adds nothing to send.
    assert ledger.reserve(req("r1", "first"), None) == L.DUPLICATE
    assert [r.correlation_id for r in ledger.final("r1").routes] == ["late"]


def test_a_redelivered_refused_message_is_a_duplicate_not_a_second_verdict(tmp_path):
    ledger = L.Ledger(tmp_path / "l.sqlite")
    route = L.Route("r2", "101", "replies", "c1")
    ledger.finish("r2", {"request_id": "r2", "result": "refused", "reason": "call_limit"}, route)
    ledger.sent(route)
    assert ledger.answered(route)
    assert ledger.reserve(req("r2", "c1"), None, redelivered=True) == L.DUPLICATE
    assert ledger.final("r2").routes == ()
    # The same id sent again as a new message may be tried again (it was never placed).
    assert ledger.reserve(req("r2", "c2"), None) == L.RESUME


def test_open_requests_page_through_every_open_one(tmp_path):
    clock = Clock()
    ledger = L.Ledger(tmp_path / "l.sqlite", clock=clock)
    for i in range(5):
        clock.t += 1
        ledger.reserve(req(f"o{i}"), None)
    ledger.finish("o2", {**FINAL, "request_id": "o2"})
    clock.t += 10
    first = ledger.open_requests(limit=2)
    assert [rid for rid, _ in first] == ["o0", "o1"]
    second = ledger.open_requests(after=first[-1][1], limit=2)
    assert [rid for rid, _ in second] == ["o3", "o4"]
    assert ledger.open_requests(after=second[-1][1], limit=2) == []


def test_progress_names_the_client_the_engine_did_not_know_yet(tmp_path):
    ledger = L.Ledger(tmp_path / "l.sqlite")
    ledger.reserve(req("p1", client="101"), None)
    assert ledger.progress("p1", "origin_ringing") == "101"
    assert ledger.progress("not-ours", "origin_ringing") is None


def test_an_engine_final_frees_the_slot(tmp_path):
    ledger = L.Ledger(tmp_path / "l.sqlite")
    ledger.reserve(req("s1"), 1)
    ledger.progress("s1", "connected")
    assert ledger.reserve(req("s2"), 1) == L.LIMIT
    ledger.finish("s1", {**FINAL, "request_id": "s1"})
    assert ledger.reserve(req("s2"), 1) == L.NEW
