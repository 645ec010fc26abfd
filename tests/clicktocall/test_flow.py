"""The engine-side flow, replaying the recorded traces (ids renamed to our scheme) with fakes."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from types import SimpleNamespace

import pytest

from arimonitor.ari.rest import AriHttpError
from arimonitor.clicktocall import reasons
from arimonitor.clicktocall import verdict as V
from arimonitor.clicktocall.flow import ClickToCallFlow
from arimonitor.clicktocall.history import SCHEMA, OutcomeStore
from arimonitor.commands import clicktocall as commands
from arimonitor.commands.registry import Registry
from arimonitor.console.watch import summarise
from tests.support import ARI

ONE_SERVER = SimpleNamespace(cfg=SimpleNamespace(servers=["asterisk1"]))  # a console ctx's config

TRACES = ARI / "traces"
RID = "8a6f2c1e-5d1b-4c3e-9f00-0a1b2c3d4e5f"


class FakeRest:
    def __init__(self, fail: dict[str, Exception] | None = None):
        self.calls: list[tuple[str, str, dict | None]] = []
        self.fail = fail or {}

    def post(self, path, params=None, body=None):
        self.calls.append(("POST", path, params))
        if path in self.fail:
            raise self.fail[path]

    def delete(self, path, params=None):
        self.calls.append(("DELETE", path, params))


class World:
    def __init__(self, rest: FakeRest | None = None, timeout: float = 30.0):
        self.rest = rest or FakeRest()
        self.published: list[tuple[str, dict]] = []
        db = sqlite3.connect(":memory:")
        db.executescript(SCHEMA)
        self.store = OutcomeStore(db)
        self.flow = ClickToCallFlow(self.rest, lambda work, done: _run(work, done),
                                    lambda topic, body: self.published.append((topic, body)),
                                    self.store, app="arimonitor", trunk_dial="PJSIP/{number}@trunk",
                                    default_timeout=timeout, clock=lambda: 0.0)

    def events(self) -> list[str]:
        return [topic for topic, _ in self.published]

    def final(self) -> dict:
        (body,) = [b for topic, b in self.published if topic == "c2c.final"]
        return body


def _run(work, done):
    try:
        result, error = work(), None
    except Exception as exc:  # noqa: BLE001
        result, error = None, exc
    done(result, error)


def _t(event: dict) -> float:
    return dt.datetime.strptime(event["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def replay(world: World, file: str, rename: dict[str, str], args: dict[str, list[str]] | None = None,
           only: set[str] | None = None) -> None:
    """Feed the trace's events with channel ids renamed to c2c-<rid>-a|b (and our appArgs)."""
    for line in (TRACES / file).read_text().splitlines():
        event = json.loads(line)
        ids = {obj.get("id") for key in ("channel", "peer", "caller")
               if isinstance(obj := event.get(key), dict)}
        if only is not None and not ids & only:
            continue
        for key in ("channel", "peer", "caller"):
            obj = event.get(key)
            if isinstance(obj, dict) and obj.get("id") in rename:
                obj["id"] = rename[obj["id"]]
        if event["type"] == "StasisStart" and args and event["channel"]["id"] in args:
            event["args"] = args[event["channel"]["id"]]
        world.flow.on_event(event, _t(event))


def test_recorded_pjsip_click_to_call_connects_records_and_ends():
    world = World()
    a, b = f"c2c-{RID}-a", f"c2c-{RID}-b"
    replay(world, "originate_click_to_call.jsonl",
           {"c2c-pjsip-a-1795555330": a, "c2c-pjsip-b-1795555330": b},
           {a: ["click2call", RID, "A", "101", "endpoint", "1123000", "1", "30"]},
           only={"c2c-pjsip-a-1795555330", "c2c-pjsip-b-1795555330"})
    assert world.events() == ["c2c.accepted", "c2c.origin_ringing", "c2c.origin_answered",
                              "c2c.destination_ringing", "c2c.connected", "c2c.final"]
    bridge = f"c2c-{RID}"
    assert world.rest.calls[:5] == [
        ("POST", "/bridges", {"type": "mixing", "bridgeId": bridge, "name": bridge}),
        ("POST", f"/bridges/{bridge}/addChannel", {"channel": a}),
        ("POST", "/channels/create", {"endpoint": "PJSIP/1123000", "app": "arimonitor",
                                      "appArgs": f"click2call,{RID},B", "channelId": b,
                                      "originator": a}),
        ("POST", f"/bridges/{bridge}/addChannel", {"channel": b}),
        ("POST", f"/channels/{b}/dial", {"caller": a, "timeout": "30"}),
    ]
    record = world.rest.calls[5]
    assert record[:2] == ("POST", f"/bridges/{bridge}/record")
    assert record[2]["name"].startswith("101/") and record[2]["name"].endswith(f"/c2c-{RID}")
    final = world.final()
    assert (final["result"], final["reason"], final["cause"]) == ("completed", None, 16)
    # Every event names both ends (arictl watch: `c2c.final 101 1013010 -> 1123000 completed`).
    assert {(b["origin"], b["destination"]) for _, b in world.published[2:]} == {
        ("1013010", "1123000")}
    assert summarise("c2c.final", final).startswith(
        "c2c.final 101 1013010 -> 1123000 completed 4s request=" + RID)
    assert 3.5 < final["duration"] < 5.5  # B answered 21:22:12.2, A hung up 21:22:16.2
    assert ("DELETE", f"/bridges/{bridge}", None) in world.rest.calls
    row = world.store.get(RID)
    assert (row["state"], row["result"], row["client"], row["recording"]) == (
        "final", "completed", "101", final["recording"])
    assert [e for e, _ in row["events"]][-1] == "final"
    assert world.flow.calls == {}


@pytest.mark.parametrize("trace_id, reason", [
    ("fail-busy", reasons.ORIGIN_BUSY),               # Dial BUSY, cause 0 "Unknown"
    ("fail-congestion", reasons.ORIGIN_FAILED),       # Dial CONGESTION, cause 0
    ("fail-noanswer", reasons.ORIGIN_NO_ANSWER),      # rang 4 s, cause 19
    ("fail-deadcontact", reasons.ORIGIN_NO_ANSWER),   # never rang, cause 19 after the timeout
    ("fail-pjsip-busy", reasons.ORIGIN_BUSY),         # 486: cause 17, Dial BUSY
    ("fail-pjsip-noanswer", reasons.ORIGIN_NO_ANSWER),
])
def test_recorded_origin_failures_have_true_reasons(trace_id, reason):
    world = World()
    replay(world, "failures.jsonl", {trace_id: f"c2c-{RID}-a"}, only={trace_id})
    final = world.final()
    assert (final["result"], final["reason"]) == ("failed", reason)
    assert "c2c.origin_answered" not in world.events()


def _answered(world: World, kind="endpoint", dest="1123000", timeout="20"):
    a = f"c2c-{RID}-a"
    world.flow.on_event({"type": "ChannelCreated", "channel": {
        "id": a, "state": "Down", "name": "PJSIP/1013010-0000002a"}}, 100.0)
    world.flow.on_event({"type": "StasisStart", "channel": {
        "id": a, "state": "Up", "name": "PJSIP/1013010-0000002a"},
                         "args": ["click2call", RID, "A", "101", kind, dest, "0", timeout]}, 103.0)


def test_destination_timeout_with_cause_0_is_no_answer():
    world = World()
    _answered(world)
    b = f"c2c-{RID}-b"
    world.flow.on_event({"type": "Dial", "dialstatus": "RINGING", "peer": {"id": b},
                         "caller": {"id": f"c2c-{RID}-a"}}, 103.5)
    world.flow.on_event({"type": "ChannelDestroyed", "channel": {"id": b}, "cause": 0,
                         "cause_txt": "Unknown"}, 123.2)
    final = world.final()
    assert final["reason"] == reasons.DESTINATION_NO_ANSWER
    assert ("DELETE", f"/channels/c2c-{RID}-a", {"reason": "normal"}) in world.rest.calls
    # The origin was up 20 s while B rang: still no talk time, and B's (true) cause.
    assert (final["duration"], final["billsec"]) == (0.0, 0.0)
    assert (final["cause"], final["cause_txt"]) == (19, "User alerting, no answer")


def test_talk_time_counts_from_both_legs_connected():
    world = World()
    _answered(world)  # the origin answered at 103.0
    a, b = f"c2c-{RID}-a", f"c2c-{RID}-b"
    world.flow.on_event({"type": "Dial", "dialstatus": "RINGING", "peer": {"id": b}}, 104.0)
    world.flow.on_event({"type": "Dial", "dialstatus": "ANSWER", "peer": {"id": b}}, 111.0)
    world.flow.on_event({"type": "ChannelDestroyed", "channel": {"id": a}, "cause": 16,
                         "cause_txt": "Normal Clearing"}, 136.5)
    final = world.final()
    assert (final["result"], final["duration"], final["billsec"]) == ("completed", 25.5, 25.5)
    assert world.store.get(RID)["duration"] == 25.5
    (stored,) = world.store.finals([RID])
    assert (stored["duration"], stored["billsec"]) == (25.5, 25.5)


def test_busy_destination_keeps_its_own_cause_and_no_talk_time():
    world = World()
    _answered(world)
    world.flow.on_event({"type": "ChannelDestroyed", "channel": {"id": f"c2c-{RID}-b"},
                         "cause": 17, "cause_txt": "User busy"}, 105.0)
    final = world.final()
    assert (final["reason"], final["cause"], final["billsec"]) == (
        reasons.DESTINATION_BUSY, 17, 0.0)


def test_destination_cause_0_early_is_a_failure_not_no_answer():
    world = World()
    _answered(world)
    world.flow.on_event({"type": "ChannelDestroyed", "channel": {"id": f"c2c-{RID}-b"},
                         "cause": 0}, 104.0)
    assert world.final()["reason"] == reasons.DESTINATION_FAILED


def test_number_goes_through_the_trunk_and_allocation_failed_is_a_true_reason():
    def failing() -> FakeRest:
        return FakeRest({"/channels/create": AriHttpError("POST", "/channels/create", 500,
                                                          {"error": "Allocation failed"})})

    world = World(failing())
    _answered(world, kind="number", dest="+5511987654321")
    create = next(c for c in world.rest.calls if c[1] == "/channels/create")
    assert create[2]["endpoint"] == "PJSIP/+5511987654321@trunk"
    final = world.final()
    # A trunk that cannot be allocated is not an "offline" (unregistered) phone.
    assert (final["result"], final["reason"]) == ("failed", reasons.DESTINATION_UNREACHABLE)
    assert final["text"] == ("destination unreachable: trunk unavailable "
                             "(PJSIP/+5511987654321@trunk)")
    assert (final["origin"], final["destination"]) == ("1013010", "+5511987654321")
    # An endpoint Asterisk cannot allocate is an unregistered one: offline is the truth there.
    world = World(failing())
    _answered(world)
    assert world.final()["reason"] == reasons.DESTINATION_OFFLINE
    assert world.final()["text"] == "destination offline: 1123000 is not registered"


def test_origin_hangs_up_while_destination_rings_and_rest_error():
    world = World()
    _answered(world)
    world.flow.on_event({"type": "ChannelDestroyed", "channel": {"id": f"c2c-{RID}-a"},
                         "cause": 16}, 106.0)
    assert world.final()["reason"] == reasons.ORIGIN_HUNG_UP
    broken = World(FakeRest({"/bridges": AriHttpError("POST", "/bridges", 500, {"message": "x"})}))
    _answered(broken)
    assert broken.final()["reason"] == reasons.ASTERISK_ERROR


def test_leg_verdicts():
    assert V.leg_verdict("", 0, 29.6, 30) == V.NO_ANSWER
    assert V.leg_verdict("", 0, 2.0, 30) == V.FAILED
    assert V.leg_verdict("BUSY", 0, 0.1, 30) == V.BUSY
    assert V.leg_verdict("CHANUNAVAIL", 0, 0.1, 30) == V.OFFLINE
    assert V.leg_verdict("", 20, 0.1, 30) == V.OFFLINE


def _console(world: World) -> Registry:
    """The `c2c` command over the world's store, as the component registers it."""
    registry = Registry()

    class Component:
        store = world.store

        def in_progress(self):
            return []

    commands.register(registry, lambda ctx: Component())
    return registry


def test_console_c2c_lists_and_details():
    world = World()
    _answered(world)
    world.flow.on_event({"type": "ChannelDestroyed", "channel": {"id": f"c2c-{RID}-b"},
                         "cause": 17, "cause_txt": "User busy"}, 105.0)
    registry = _console(world)
    listed = registry.dispatch({"id": "1", "cmd": "c2c", "args": []}, ONE_SERVER)
    assert listed["status"] == "ok" and RID in listed["text"] and "destination busy" in listed["text"]
    assert "SERVER" not in listed["text"]  # one server: the table as it was
    # WHEN is when the request was made, not its last update
    row = world.store.get(RID)
    assert row["created"] < row["updated"]
    assert commands._when(row["created"]) in listed["text"] and commands._when(row["updated"]) not in listed["text"]
    one = registry.dispatch({"id": "2", "cmd": "c2c", "args": [RID]}, ONE_SERVER)
    assert one["data"]["reason"] == reasons.DESTINATION_BUSY and "cause     17" in one["text"]
    missing = registry.dispatch({"id": "3", "cmd": "c2c", "args": ["nope"]}, ONE_SERVER)
    assert missing["status"] == "error"


def test_console_c2c_names_each_request_s_server_with_several_servers():
    from arimonitor.clicktocall.outcomes import outcome

    world = World()
    for rid, server in (("r-pbx1", "pbx1"), ("r-pbx2", "pbx2"), ("r-refused", None)):
        world.store.record(outcome(rid, "101", reasons.EV_ACCEPTED, origin="1013010",
                                   destination="1013015", server=server))
    registry = _console(world)
    two = SimpleNamespace(cfg=SimpleNamespace(servers=["pbx1", "pbx2"]))
    text = registry.dispatch({"id": "1", "cmd": "c2c", "args": []}, two)["text"]
    lines = text.splitlines()
    head = next(line for line in lines if line.startswith("WHEN"))
    assert head.split()[:4] == ["WHEN", "REQUEST", "SERVER", "CLIENT"], head
    servers = {line.split()[2]: line.split()[3] for line in lines if " r-" in line}
    assert servers == {"r-pbx1": "pbx1", "r-pbx2": "pbx2", "r-refused": "-"}, text
    detail = registry.dispatch({"id": "2", "cmd": "c2c", "args": ["r-pbx2"]}, two)["text"]
    assert "server    pbx2" in detail
    alone = registry.dispatch({"id": "3", "cmd": "c2c", "args": ["r-pbx2"]}, ONE_SERVER)["text"]
    assert "server" not in alone
