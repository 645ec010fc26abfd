"""`calls` and `history` on a two-server config: a SERVER column and `--server NAME`."""

from __future__ import annotations

import time

import pytest

from arimonitor import protocol
from arimonitor.engine.state import Call
from tests.console_engine.engine_here import EngineHere
from tests.support import eventually

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
            two.engine.watches[server].state.calls[cid] = Call(cid, server, now, client="101",
                                                               origin="1013010", destination="1001")
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


def test_status_names_every_server_its_link_and_what_the_engine_set_aside(two):
    two.in_loop(lambda: two.engine.intake.other_servers.update({"pbx9": 7}))
    shown = two.cmd("status")
    # neither reader runs here: each server's link is its own named problem
    data = shown["data"]
    assert list(data["servers"]) == ["pbx1", "pbx2"]
    assert data["link"]["server"] == "pbx1"
    assert [(v["server"], v.get("set_aside")) for v in data["server_list"]] == [
        ("pbx1", None), ("pbx2", None), ("pbx9", 7)]
    reader = next(x for x in shown["text"].splitlines() if x.startswith("reader:"))
    assert "pbx1 not seen yet" in reader and "; pbx2 not seen yet" in reader, reader
    line = next(x for x in shown["text"].splitlines() if x.startswith("servers:"))
    assert "pbx1 (" in line and "pbx2 (" in line and "pbx9 (not configured, 7 set aside)" in line
    assert any(p.startswith("pbx2 link:") for p in data["problems"]), data["problems"]
    assert two.cmd("status", "--server", "pbx2")["data"]["link"]["server"] == "pbx2"
    assert two.cmd("status", "--server", "pbx7")["code"] == protocol.E_NOT_FOUND


def test_list_shows_and_filters_each_endpoint_s_server(two):
    def register() -> None:
        for server, ep_id in (("pbx1", "1013010"), ("pbx2", "1013015")):
            ep = two.engine.watches[server].state.endpoint("PJSIP", ep_id)
            ep.state = "online"
    two.in_loop(register)
    every = {r["id"]: r["server"] for r in two.cmd("list")["data"]}
    assert every["1013010"] == "pbx1" and every["1013015"] == "pbx2"
    assert "SERVER" in two.cmd("list")["text"]
    only = two.cmd("list", "--server", "pbx2")["data"]
    assert [r["id"] for r in only] == ["1013015"]
    assert two.cmd("list", "--server", "pbx7")["code"] == protocol.E_NOT_FOUND
    assert two.cmd("stats", "--server", "pbx2")["data"]["counters"]["received"] == 0


def _endpoint_event(ep_id: str, state: str) -> dict:
    return {"type": "EndpointStateChange",
            "endpoint": {"technology": "PJSIP", "resource": ep_id, "state": state, "channel_ids": []}}


def test_an_endpoint_online_on_two_servers_at_once_is_one_warning_per_episode(two):
    warnings: list[dict] = []
    two.in_loop(lambda: two.engine.notifier.subscribe(
        "warning.endpoint_two_servers", lambda _topic, body: warnings.append(body)))

    def online(server: str, state: str = "online") -> None:
        two.in_loop(lambda: two.engine.watches[server].handlers.apply_event(
            _endpoint_event("1013010", state), time.time()))

    online("pbx1")
    assert warnings == []
    online("pbx2")
    online("pbx2")  # the same state again: still the one episode
    assert [(w["endpoint"], w["servers"], w["server"]) for w in warnings] == [
        ("1013010", ["pbx1", "pbx2"], "pbx2")]
    shown = two.cmd("status")
    assert shown["data"]["two_servers"]["count"] == 1
    assert "WARNING:    endpoint 1013010 registered on pbx1, pbx2 at once" in shown["text"]
    row = next(r for r in two.cmd("list")["data"] if r["id"] == "1013010")
    assert row["servers"] == ["pbx1", "pbx2"] and row["server"] == "pbx1"

    online("pbx1", "offline")  # the episode ends: it is pbx2's now
    assert two.cmd("status")["data"]["two_servers"]["count"] == 0
    row = next(r for r in two.cmd("list")["data"] if r["id"] == "1013010")
    assert row["server"] == "pbx2" and "servers" not in row
    online("pbx1")  # a new episode warns again
    assert len(warnings) == 2


def _created(cid: str) -> dict:
    return {"type": "ChannelCreated", "timestamp": "2026-01-01T00:00:00.000+0000",
            "channel": {"id": cid, "name": f"PJSIP/1013010-{cid}", "state": "Ring",
                        "caller": {"name": "", "number": "1013010"}, "dialplan": {"exten": "1001"}}}


def test_an_outage_and_resync_of_pbx2_leave_pbx1_s_calls_alone(two):
    from arimonitor.engine import resync as R

    pbx1, pbx2 = two.engine.watches["pbx1"], two.engine.watches["pbx2"]
    # the same channel id on both servers: two calls, one each
    two.in_loop(lambda: [w.handlers.apply_event(_created("c1"), time.time()) for w in (pbx1, pbx2)])
    assert [c["server"] for c in two.cmd("calls")["data"]] == ["pbx1", "pbx2"]

    t = time.time()
    two.in_loop(lambda: pbx2.link.on_link({"state": "disconnected", "t": t, "reason": "test"}))
    link = two.in_loop(two.ctx.link)
    assert link["servers"]["pbx2"]["outage_open_since"] == t
    assert link["servers"]["pbx1"]["outage_open_since"] != t
    assert link["server"] == "pbx1" and link["servers"]["pbx2"]["state"] == "disconnected"

    # pbx2 comes back with no channel: its call ended, its outage closed; pbx1's call untouched
    pbx2.resyncer.snapshot = lambda: R.Snapshot(time.time(), None, [], [], [])
    two.in_loop(lambda: pbx2.link.on_link({"state": "connected", "t": time.time(), "epoch": "e2"}))
    eventually(lambda: two.in_loop(lambda: pbx2.resyncer.outage_started) is None, timeout=10)
    assert two.in_loop(lambda: list(pbx2.state.calls)) == []
    assert two.in_loop(lambda: list(pbx1.state.calls)) == ["c1"]
    assert [c["server"] for c in two.cmd("calls")["data"]] == ["pbx1"]
    ended = two.cmd("history", "--server", "pbx2")["data"]
    assert [r["id"] for r in ended] == ["c1"]
    assert two.cmd("history", "--server", "pbx1")["data"] == []
    outages = two.in_loop(lambda: two.engine.store.outages(5))
    assert any(o["server"] == "pbx2" and o["reason"] == "reader connected" for o in outages)
    assert not any(o["server"] == "pbx1" and o["reason"] == "reader connected" for o in outages)


def test_publications_carry_their_server_and_the_bus_keys_them_by_it(two):
    from arimonitor.bus.buffer import EventBuffer
    from arimonitor.bus.feed import Feed

    published: list[tuple[str, dict]] = []
    for prefix in ("endpoint.", "warning.", "link."):
        two.in_loop(lambda p=prefix: two.engine.notifier.subscribe(
            p, lambda topic, body: published.append((topic, body))))
    pbx2 = two.engine.watches["pbx2"]
    two.in_loop(lambda: pbx2.handlers.apply_event(_endpoint_event("1013015", "online"), time.time()))
    two.in_loop(lambda: pbx2.link.on_link({"state": "disconnected", "t": time.time()}))
    two.in_loop(lambda: pbx2.handlers.apply_event({"type": "ApplicationReplaced",
                                                   "application": "arimonitor"}, time.time()))
    by_topic = {topic: body for topic, body in published}
    assert {t: b["server"] for t, b in by_topic.items()} == {
        "endpoint.online": "pbx2", "link.disconnected": "pbx2", "warning.app_replaced": "pbx2"}
    bus = Feed(EventBuffer(10), "pbx1", "r")
    bus.on_publication("endpoint.online", by_topic["endpoint.online"])
    key = bus.buffer.after(0, 1)[0].routing_key
    assert key.startswith("endpoint.online.pbx2."), key


def test_recovery_resyncs_every_server_and_fails_if_one_fails(two):
    from arimonitor.ari.rest import AriError
    from arimonitor.engine import resync as R

    pbx1, pbx2 = two.engine.watches["pbx1"], two.engine.watches["pbx2"]
    fetched: list[str] = []

    def empty(name: str):
        def snapshot() -> R.Snapshot:
            fetched.append(name)
            return R.Snapshot(time.time(), None, [], [], [])
        return snapshot

    def refused() -> R.Snapshot:
        fetched.append("pbx2")
        raise AriError("connection refused")

    pbx1.resyncer.snapshot, pbx2.resyncer.snapshot = empty("pbx1"), refused
    failed = two.cmd("recovery")
    # pbx2 failed: the command fails (exit 1), and says how each server did
    assert failed["status"] == "error" and failed["code"] == protocol.E_ARI_UNAVAILABLE, failed
    views = failed["data"]["servers"]
    assert (views["pbx1"]["ok"], views["pbx2"]["ok"]) == (True, False), views
    assert "connection refused" in views["pbx2"]["error"]
    assert "recovery failed on pbx2 (1 of 2 servers)" in failed["text"]
    assert "pbx1: resync done" in failed["text"] and "pbx2: recovery failed" in failed["text"]
    assert {"pbx1", "pbx2"} <= set(fetched)

    fetched.clear()
    only = two.cmd("recovery", "--server", "pbx1")
    assert only["status"] == "ok" and only["data"]["adopted"] == 0, only
    assert only["text"].startswith("resync done:") and "pbx2" not in fetched
    assert two.cmd("recovery", "--server", "pbx7")["code"] == protocol.E_NOT_FOUND

    pbx2.resyncer.snapshot = empty("pbx2")
    both = eventually(lambda: (r := two.cmd("recovery"))["status"] == "ok" and r, timeout=10)
    assert sorted(both["data"]["servers"]) == ["pbx1", "pbx2"]
    assert [line.split(":")[0] for line in both["text"].splitlines()] == ["pbx1", "pbx2"]


def test_stats_shows_a_row_per_server_of_its_own_counters(two):
    pbx1, pbx2 = two.engine.watches["pbx1"], two.engine.watches["pbx2"]

    def traffic() -> None:
        pbx1.state.counters.received += 7
        pbx2.state.counters.received += 3
        pbx2.state.counters.frames_lost += 2
        pbx2.state.counters.outages += 1
        pbx2.state.calls["c9"] = Call("c9", "pbx2", time.time(), client="101", origin="1013010",
                                      destination="1001")
        pbx2.state.endpoint("PJSIP", "1013015").state = "online"
    two.in_loop(traffic)
    shown = two.cmd("stats")
    rows = {r["server"]: r for r in shown["data"]["server_list"]}
    assert [rows[s]["received"] for s in ("pbx1", "pbx2")] == [7, 3]
    assert (rows["pbx2"]["frames_lost"], rows["pbx2"]["outages"], rows["pbx2"]["calls"],
            rows["pbx2"]["online"]) == (2, 1, 1, 1), rows["pbx2"]
    assert (rows["pbx1"]["frames_lost"], rows["pbx1"]["calls"], rows["pbx1"]["online"]) == (0, 0, 0)
    text = shown["text"]
    assert "=== SERVERS (2) ===" in text, text
    head = next(line for line in text.splitlines() if line.startswith("SERVER "))
    assert head.split()[:5] == ["SERVER", "LINK", "PROBE", "EVENTS", "LOST"], head
    pbx2_line = next(line for line in text.splitlines() if line.startswith("pbx2 "))
    assert pbx2_line.split()[3:5] == ["3", "2"], pbx2_line
    # --server: that server's counters, no table of the others
    one = two.cmd("stats", "--server", "pbx2")
    assert "SERVERS" not in one["text"] and "server_list" not in one["data"]


def test_stats_shows_each_server_s_probe_in_a_word(two):
    """PROBE: ok, stalled or failing from each server's own REST probe ("-" before any)."""
    probes = {name: w.link.probe for name, w in two.engine.watches.items()}

    def column() -> dict[str, str]:
        shown = two.cmd("stats")
        words = {r["server"]: r["probe"] for r in shown["data"]["server_list"]}
        lines = {line.split()[0]: line.split()[2] for line in shown["text"].splitlines()
                 if line.startswith(("pbx1 ", "pbx2 "))}
        assert lines == words, (lines, shown["text"])
        return words
    assert column() == {"pbx1": "-", "pbx2": "-"}

    def answers(pbx2_kind: str) -> None:
        probes["pbx1"].ok = probes["pbx2"].ok = 3
        probes["pbx2"].note(pbx2_kind, None, f"{pbx2_kind} for the test", time.time())
    two.in_loop(lambda: answers("slow"))
    assert column() == {"pbx1": "ok", "pbx2": "stalled"}
    two.in_loop(lambda: answers("refused"))
    assert column() == {"pbx1": "ok", "pbx2": "failing"}
    two.in_loop(lambda: answers(""))
    assert column() == {"pbx1": "ok", "pbx2": "ok"}


def test_one_server_s_stats_have_no_server_table(here):
    shown = here.cmd("stats")
    assert "SERVERS" not in shown["text"] and "server_list" not in shown["data"]
