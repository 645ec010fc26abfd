"""Engine restart mid-call: the flow's state survives in SQLite and is matched with the legs
Asterisk still has after a resync (a fresh flow over the same file plays the restarted engine)."""

from __future__ import annotations

import sqlite3

from arimonitor.clicktocall import reasons
from arimonitor.clicktocall.flow import ClickToCallFlow
from arimonitor.clicktocall.flowstate import SETUP_GRACE
from arimonitor.clicktocall.history import FLOWS_SCHEMA, SCHEMA, FlowStore, OutcomeStore
from tests.clicktocall.test_flow import FakeRest, _run

ARGS = ["click2call", "{rid}", "A", "101", "endpoint", "1123000", "0", "20"]


class Engine:
    """One engine life over the SQLite file: a fresh connection, store and flow."""

    def __init__(self, path, clock: float = 0.0):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.executescript(SCHEMA + FLOWS_SCHEMA)
        self.rest = FakeRest()
        self.published: list[tuple[str, dict]] = []
        self.now = clock
        self.flow = ClickToCallFlow(self.rest, _run, lambda t, b: self.published.append((t, b)),
                                    OutcomeStore(self.db), app="arimonitor",
                                    trunk_dial="PJSIP/{number}@trunk", default_timeout=30.0,
                                    clock=lambda: self.now, flows=FlowStore(self.db))
        self.flow.restore()

    def finals(self) -> dict[str, dict]:
        return {b["request_id"]: b for t, b in self.published if t == "c2c.final"}

    def rows(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT request_id FROM c2c_flows")]


def leg(rid: str, which: str, state: str = "Up", args: bool = False) -> dict:
    name = "PJSIP/1013010-00000001" if which == "a" else "PJSIP/1123000-00000002"
    return {"id": f"c2c-{rid}-{which}", "name": name, "state": state,
            "stasis_args": [a.format(rid=rid) for a in ARGS] if args else []}


def connect(engine: Engine, rid: str, t0: float, answer_at: float) -> None:
    a, b = f"c2c-{rid}-a", f"c2c-{rid}-b"
    on = engine.flow.on_event
    on({"type": "ChannelCreated", "channel": {"id": a, "name": "PJSIP/1013010-01", "state": "Down"}}, t0)
    on({"type": "StasisStart", "channel": {"id": a, "name": "PJSIP/1013010-01", "state": "Up"},
        "args": [x.format(rid=rid) for x in ARGS]}, t0 + 3)
    on({"type": "ChannelCreated", "channel": {"id": b, "name": "PJSIP/1123000-02", "state": "Down"}}, t0 + 3.1)
    on({"type": "Dial", "dialstatus": "RINGING", "peer": {"id": b}}, t0 + 3.2)
    if answer_at:
        on({"type": "ChannelStateChange", "channel": {"id": b, "state": "Up"}}, answer_at)


def test_connected_call_survives_an_engine_restart(tmp_path):
    db = tmp_path / "arimonitor.sqlite"
    first = Engine(db)
    connect(first, "talk", 1000.0, answer_at=1010.0)      # connected before the "kill -9"
    connect(first, "gone", 1000.0, answer_at=1011.0)      # ends while the engine is down
    connect(first, "ring", 1000.0, answer_at=0)           # B ringing; both legs vanish unseen
    assert sorted(first.rows()) == ["gone", "ring", "talk"]
    assert first.finals() == {}
    del first  # no close, no final: what kill -9 leaves behind

    second = Engine(db, clock=1100.0)
    assert sorted(second.flow.calls) == ["gone", "ring", "talk"]
    assert second.flow.calls["talk"].connected == 1010.0
    result = second.flow.reconcile([leg("talk", "a"), leg("talk", "b")], ["c2c-talk"])
    assert result == {"adopted": 0, "ended": 2}
    finals = second.finals()
    assert (finals["gone"]["result"], finals["gone"]["duration"]) == ("completed", None)
    assert finals["gone"]["text"] == "the call ended while the engine was not watching"
    assert (finals["ring"]["result"], finals["ring"]["reason"]) == ("failed", reasons.ENDED_UNSEEN)
    assert ("DELETE", "/channels/c2c-gone-a", {"reason": "normal"}) in second.rest.calls

    # The call still up hangs up later: completed, duration from the stored answer time.
    second.flow.on_event({"type": "ChannelDestroyed", "channel": {"id": "c2c-talk-a"},
                          "cause": 16, "cause_txt": "Normal Clearing"}, 1130.0)
    talk = second.finals()["talk"]
    assert (talk["result"], talk["reason"], talk["cause"], talk["duration"]) == (
        "completed", None, 16, 120.0)
    assert (talk["client"], talk["origin"], talk["destination"]) == ("101", "1013010", "1123000")
    assert ("DELETE", "/bridges/c2c-talk", None) in second.rest.calls
    assert second.rows() == [] and second.flow.calls == {}
    assert OutcomeStore(second.db).get("talk")["result"] == "completed"


def test_calls_never_seen_are_adopted_from_the_channels(tmp_path):
    engine = Engine(tmp_path / "db.sqlite", clock=500.0)
    # Answered while the engine was down, in our app, destination never dialled: dial it now.
    # Another, still ringing: just known. A third already talking: connected from now.
    result = engine.flow.reconcile([leg("new", "a", args=True), leg("rng", "a", "Ringing"),
                                    leg("up", "a", args=True), leg("up", "b")], ["c2c-up"])
    assert result == {"adopted": 3, "ended": 0}
    assert ("POST", "/channels/create", {"endpoint": "PJSIP/1123000", "app": "arimonitor",
                                         "appArgs": "click2call,new,B", "channelId": "c2c-new-b",
                                         "originator": "c2c-new-a"}) in engine.rest.calls
    # A resync right after: leg B of "new" is not in the engine's state yet; grace, no end.
    engine.now += SETUP_GRACE / 2
    assert engine.flow.reconcile([leg("new", "a"), leg("rng", "a", "Ringing"), leg("up", "a"),
                                  leg("up", "b")], ["c2c-up", "c2c-new"])["ended"] == 0
    engine.flow.on_event({"type": "ChannelDestroyed", "channel": {"id": "c2c-up-b"}, "cause": 16},
                         engine.now + 60)
    up = engine.finals()["up"]
    assert (up["result"], up["duration"]) == ("completed", 62.5)
    # The ringing one fails on its own ChannelDestroyed, by the usual verdict.
    engine.flow.on_event({"type": "ChannelDestroyed", "channel": {"id": "c2c-rng-a"}, "cause": 17},
                         engine.now + 1)
    assert engine.finals()["rng"]["reason"] == reasons.ORIGIN_BUSY


def test_a_leg_b_that_never_comes_is_ended_by_the_sweep(tmp_path):
    """Leg B asked for just before a kill -9 and never created: no resync may follow, so the
    component's sweep (flowstate.waiting_for_b) ends the call instead of leaving the origin in
    silence."""
    from arimonitor.clicktocall.flowstate import waiting_for_b

    engine = Engine(tmp_path / "db.sqlite", clock=1000.0)
    a = "c2c-lone-a"
    engine.flow.on_event({"type": "ChannelCreated", "channel": {"id": a, "name": "PJSIP/1013010-01",
                                                                "state": "Down"}}, 1000.0)
    engine.flow.on_event({"type": "StasisStart", "channel": {"id": a, "name": "PJSIP/1013010-01",
                                                             "state": "Up"},
                          "args": [x.format(rid="lone") for x in ARGS]}, 1003.0)
    assert not waiting_for_b(engine.flow, 1010.0, 20.0)
    engine.now = 1030.0
    assert waiting_for_b(engine.flow, engine.now, 20.0)
    result = engine.flow.reconcile([leg("lone", "a")], ["c2c-lone"], grace=20.0)
    assert result["ended"] == 1
    assert engine.finals()["lone"]["result"] == "failed"
    assert ("DELETE", f"/channels/{a}", {"reason": "normal"}) in engine.rest.calls


def test_calls_in_flight_at_the_stop_end_while_down_with_talk_time_up_to_the_last_alive_mark(tmp_path):
    from arimonitor.clicktocall.whiledown import end_calls_of_the_stop, last_alive

    db = tmp_path / "arimonitor.sqlite"
    first = Engine(db)
    connect(first, "talk", 1000.0, answer_at=1010.0)   # still talking at the next start
    connect(first, "gone", 1000.0, answer_at=1011.0)   # hung up while arimonitor was down
    connect(first, "ring", 1000.0, answer_at=0)        # B rang; both legs gone
    del first

    second = Engine(db, clock=1100.0)
    alive = last_alive({"at": 1100.0, "unseen_seconds": 40.0})
    assert alive == 1060.0 and last_alive({"at": 1100.0}) is None
    ended = end_calls_of_the_stop(second.flow, set(second.flow.calls),
                                  [leg("talk", "a"), leg("talk", "b"), leg("gone", "b")], alive,
                                  second.now)
    assert ended == {"gone", "ring"}
    assert ("DELETE", "/channels/c2c-gone-b", {"reason": "normal"}) in second.rest.calls
    finals = second.finals()
    gone = finals["gone"]
    assert (gone["result"], gone["reason"], gone["duration"], gone["billsec"]) == (
        "completed", reasons.ENDED_WHILE_DOWN, 49.0, 49.0)   # 1011 -> 1060, never "no talk time"
    assert reasons.describe(gone["reason"]) == "ended while arimonitor was down"
    assert (finals["ring"]["result"], finals["ring"]["reason"]) == ("failed", reasons.ENDED_WHILE_DOWN)
    assert "talk" not in finals and sorted(second.flow.calls) == ["talk"]
    assert OutcomeStore(second.db).get("gone")["reason"] == reasons.ENDED_WHILE_DOWN
    # the reconcile that follows finds nothing more to end
    assert second.flow.reconcile([leg("talk", "a"), leg("talk", "b")], ["c2c-talk"])["ended"] == 0
