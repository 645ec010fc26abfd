"""`calls` and `history` on a two-server config: a SERVER column and `--server NAME`."""

from __future__ import annotations

import time

import pytest

from arimonitor import protocol
from arimonitor.engine.state import Call
from tests.console_engine.engine_here import EngineHere

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def two():
    engine = EngineHere(**{"ari": {"server_id": "pbx1"},
                           "ari:pbx2": {"url": "http://127.0.0.1:9/ari"}})
    try:
        yield engine
    finally:
        engine.close()


def _ended(server: str, call_id: str, origin: str, t: float) -> dict:
    return {"server": server, "id": call_id, "client": "101", "origin": origin, "destination": "1001",
            "created": t - 5, "answered": t - 4, "ended": t, "duration": 5.0, "billsec": 4.0,
            "hangup_cause": 16, "end_reason": "hangup", "channels": [call_id]}


def test_history_and_calls_show_and_filter_by_server(two):
    now = time.time()
    two.in_loop(lambda: [two.engine.store.save_call(_ended(*row, now - i))
                         for i, row in enumerate([("pbx1", "a1", "1013010"), ("pbx2", "b1", "1013015"),
                                                  ("pbx1", "a2", "1013020")])])
    every = two.cmd("history")
    assert [r["id"] for r in every["data"]] == ["a1", "b1", "a2"]
    assert "SERVER" in every["text"] and "pbx2" in every["text"]
    only = two.cmd("history", "--server", "pbx2")
    assert [r["id"] for r in only["data"]] == ["b1"] and "ON SERVER PBX2" in only["text"]

    def live_calls() -> None:
        for server, cid in (("pbx1", "c1"), ("pbx2", "c2")):
            two.engine.state.calls[cid] = Call(cid, server, now, client="101", origin="1013010",
                                               destination="1001")
    two.in_loop(live_calls)
    calls = two.cmd("calls", "--server", "pbx1")
    assert [r["id"] for r in calls["data"]] == ["c1"] and "SERVER" in calls["text"]
    assert [r["server"] for r in two.cmd("calls")["data"]] == ["pbx1", "pbx2"]

    wrong = two.cmd("history", "--server", "pbx9")
    assert wrong["code"] == protocol.E_NOT_FOUND and "pbx1, pbx2" in wrong["reason"]


def test_one_server_keeps_its_tables_without_a_server_column(here):
    now = time.time()
    here.in_loop(lambda: here.engine.store.save_call(_ended(here.cfg["ari.server_id"], "x1", "1013010", now)))
    shown = here.cmd("history")
    assert [r["id"] for r in shown["data"]] == ["x1"] and "SERVER" not in shown["text"]


def test_status_names_every_server_and_what_the_engine_set_aside(two):
    two.in_loop(lambda: two.engine.intake.other_servers.update({"pbx2": 7}))
    shown = two.cmd("status")
    assert shown["status"] == "ok", shown
    assert [(v["server"], v["set_aside"]) for v in shown["data"]["servers"]] == [("pbx1", 0), ("pbx2", 7)]
    line = next(x for x in shown["text"].splitlines() if x.startswith("servers:"))
    assert "pbx1 (" in line and "pbx2 (not watched by the engine, 7 set aside)" in line
