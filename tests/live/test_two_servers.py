"""Issue 14 live: one arimonitor tree watching two real Asterisk servers (pbx1 = `[ari]`,
pbx2 = `[ari:pbx2]`), each with its own folder, ports and SIPp phones. Truth comes from each
instance: `pjsip show contacts`, its channels, its CDR Master.csv; never from arimonitor.

The two instances run the same configuration, so their uniqueids are alike (`<epoch>.<n>`, no
systemname): two calls may share an id, and a call is named by (server, id) throughout."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

import pytest

from tests.live import truth
from tests.live.monitor import monitor_of
from tests.live.web import Requests
from tests.support import eventually, eventually_assert
from tests.trees import Received, delete_exchange_and_queue, topic_exchange_with_queue

pytestmark = pytest.mark.live

# Phones of client 112 (gravar=N) answer on pbx2, of client 100 on pbx1: no endpoint is
# registered on both servers (that is a warning of its own), and no call is recorded.
ON_PBX1 = ("1003010",)
ON_PBX2 = ("1123010", "1123000")

# (server, call id) -> origin of each direct call placed here; the bus test reads them all
PLACED: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def bus():
    """A topic exchange of this module's own and a queue bound to all of it; deleted after."""
    name = f"test-live-bus-{uuid.uuid4().hex[:8]}"
    conn, ch = topic_exchange_with_queue(name)
    try:
        yield name, Received(ch, name)
    finally:
        delete_exchange_and_queue(conn, ch, name)


@pytest.fixture(scope="module")
def servers(asterisk, asterisk2):
    return {"pbx1": asterisk, "pbx2": asterisk2}


@pytest.fixture(scope="module")
def lab(asterisk, asterisk2, phones, phones2, bus, tmp_path_factory):
    with monitor_of(asterisk, tmp_path_factory.mktemp("arimonitor"),
                    extra={"ari": {"server_id": "pbx1"}, "bus": {"enabled": "yes", "exchange": bus[0]}},
                    servers={"pbx2": asterisk2}) as mon:
        for endpoint in ON_PBX1:
            phones.answering(endpoint)
        for endpoint in ON_PBX2:
            phones2.answering(endpoint)
        mon.start_watching(*ON_PBX1, *ON_PBX2)

        def ready() -> bool:
            assert mon.arictl("status")["data"]["processes"]["clicktocall"][0]["broker"], "clicktocall"
            assert mon.arictl("stats")["data"]["bus"]["connected"], "bus"
            return True
        eventually_assert(ready, timeout=30)
        yield mon


def _history_row(monitor, server: str, call_id: str) -> dict:
    """The history row of call `call_id` of `server`, once it has ended."""
    def ended():
        rows = [r for r in monitor.arictl("history", "--server", server, "--limit", "50")["data"]
                if r["id"] == call_id]
        assert len(rows) <= 1, rows
        return rows[0] if rows else None
    return eventually(ended, timeout=30)


def _one_cdr(asterisk, call_id: str, src: str):
    """The Dial line of `src`'s call `call_id` in this instance's Master.csv."""
    cdr = truth.the_cdr([c for c in asterisk.cdrs() if c.src == src], call_id, "Dial")
    assert cdr.disposition == "ANSWERED", cdr
    return cdr


def test_each_endpoint_is_listed_with_the_server_it_registered_on(servers, lab):
    contacts = {name: ast.contacts() for name, ast in servers.items()}
    assert set(contacts["pbx1"]) == set(ON_PBX1) and set(contacts["pbx2"]) == set(ON_PBX2), contacts
    where = {aor: name for name, found in contacts.items() for aor in found}

    def listed() -> bool:
        rows = {r["id"]: r for r in lab.arictl("list")["data"]}
        seen = {i: (r["server"], r["state"]) for i, r in rows.items() if r["state"] == "online"}
        assert seen == {aor: (server, "online") for aor, server in where.items()}, rows
        return True
    eventually_assert(listed, timeout=15)
    for name, found in contacts.items():
        assert sorted(r["id"] for r in lab.arictl("list", "--server", name)["data"]) == sorted(found)
    # no phone is registered on both: no warning of one
    assert lab.arictl("status")["data"]["two_servers"]["count"] == 0


def test_calls_on_both_servers_at_once_each_end_as_one_row_of_its_server(servers, phones, phones2, lab):
    callers = {"pbx1": phones.call("1003000", "71003010", phones.talk_scenario(4000)),
               "pbx2": phones2.call("1123000", "71123010", phones2.talk_scenario(4000))}
    ids = {"pbx1": truth.call_id_of(servers["pbx1"], "1003000"),
           "pbx2": truth.call_id_of(servers["pbx2"], "1123000")}

    def both_up() -> bool:
        up = {(c["server"], c["id"]) for c in lab.arictl("calls")["data"] if c["state"] == "up"}
        assert up == set(ids.items()), (up, ids)
        return True
    eventually_assert(both_up, timeout=10)
    for server, call_id in ids.items():
        assert [c["id"] for c in lab.arictl("calls", "--server", server)["data"]] == [call_id]

    for server, caller in callers.items():
        assert caller.wait(30) == 0, server
    for server, (origin, destination) in {"pbx1": ("1003000", "1003010"),
                                          "pbx2": ("1123000", "1123010")}.items():
        PLACED[(server, ids[server])] = origin
        row = _history_row(lab, server, ids[server])
        cdr = _one_cdr(servers[server], ids[server], origin)
        assert (row["server"], row["origin"], row["destination"], row["end_reason"]) == \
            (server, origin, destination, "hangup")
        truth.assert_answer_time(cdr, row["answered"])
        truth.assert_billsec(cdr, row["billsec"])
    # one row per call and server: an id both instances happened to give is two rows, one each
    rows = lab.arictl("history", "--limit", "50")["data"]
    for server, call_id in ids.items():
        assert sorted(r["server"] for r in rows if r["id"] == call_id) == \
            sorted(name for name, other_id in ids.items() if other_id == call_id)
    # ... and neither instance knows the other's call
    assert not [c for c in servers["pbx1"].cdrs() if c.src == "1123000"]
    assert not [c for c in servers["pbx2"].cdrs() if c.src == "1003000"]


def test_a_click_to_call_whose_origin_is_on_pbx2_is_placed_on_pbx2(servers, lab):
    web = Requests(lab.queue)
    try:
        rid = web.send(client="112", origin="1123010", destination="1123000", timeout=20)
        lab.c2c_reached(rid, "connected")
        # pbx2's own view: the destination's channel is up there
        eventually(lambda: servers["pbx2"].up_channels("1123000"), timeout=10)
        servers["pbx2"].hang_up(f"c2c-{rid}-a")
        final = web.final(rid)
    finally:
        web.close()
    assert (final["result"], final["server"]) == ("completed", "pbx2"), final
    (leg_a,) = [c for c in servers["pbx2"].cdrs() if c.uniqueid == f"c2c-{rid}-a"]
    assert leg_a.disposition == "ANSWERED" and leg_a.dstchannel.startswith("PJSIP/1123000-"), leg_a
    # pbx1 was never asked to ring anyone for it
    assert not [c for c in servers["pbx1"].cdrs() if rid in c.uniqueid or rid in c.channel]


def test_a_restart_of_pbx2_leaves_the_call_on_pbx1_untouched(servers, phones, phones2, lab):
    before = lab.arictl("status")["data"]["servers"]
    steady = phones.call("1003000", "71003010", phones.talk_scenario(12000))
    cut = phones2.call("1123000", "71123010", "uac_call.xml")   # talks until pbx2 hangs up
    steady_id = truth.call_id_of(servers["pbx1"], "1003000")
    cut_id = truth.call_id_of(servers["pbx2"], "1123000")
    PLACED[("pbx1", steady_id)] = "1003000"
    PLACED[("pbx2", cut_id)] = "1123000"
    answered = eventually(lambda: [c["answered"] for c in lab.arictl("calls", "--server", "pbx1")["data"]
                                   if c["id"] == steady_id and c["state"] == "up"], timeout=10)
    eventually(lambda: [c for c in lab.arictl("calls", "--server", "pbx2")["data"]
                        if c["id"] == cut_id and c["state"] == "up"], timeout=10)

    restarted_at = time.time()
    servers["pbx2"].cli("core restart now")
    assert cut.wait(20) == 0

    def pbx2_back() -> dict:
        now = lab.arictl("status")["data"]["servers"]
        pbx2 = now["pbx2"]
        assert pbx2["state"]["asterisk_startup"] != before["pbx2"]["state"]["asterisk_startup"], pbx2
        assert pbx2["link"]["state"] == "connected" and pbx2["link"]["epoch"] != before["pbx2"]["link"]["epoch"]
        assert pbx2["outage_open_since"] is None, pbx2
        assert (pbx2["last_outage"] or {}).get("disconnected", 0) >= restarted_at - truth.EVENT_SLACK, pbx2
        return now
    now = eventually_assert(pbx2_back, timeout=30)
    # pbx1 saw nothing of it: same link, no outage, and its call still up as it was
    assert now["pbx1"]["link"]["epoch"] == before["pbx1"]["link"]["epoch"], now["pbx1"]
    assert now["pbx1"]["last_outage"] is None and now["pbx1"]["outage_open_since"] is None
    assert steady.poll() is None, "pbx1's call ended before pbx2 was back: make it talk longer"
    assert [(c["id"], c["state"], c["answered"]) for c in lab.arictl("calls", "--server", "pbx1")["data"]] == \
        [(steady_id, "up", answered[0])]

    assert lab.arictl("calls", "--server", "pbx2")["data"] == []
    cut_row = _history_row(lab, "pbx2", cut_id)
    cut_cdr = _one_cdr(servers["pbx2"], cut_id, "1123000")
    assert (cut_row["destination"], cut_row["end_reason"]) == ("1123010", "hangup"), cut_row
    truth.assert_billsec(cut_cdr, cut_row["billsec"])

    assert steady.wait(30) == 0
    row = _history_row(lab, "pbx1", steady_id)
    cdr = _one_cdr(servers["pbx1"], steady_id, "1003000")
    assert (row["destination"], row["end_reason"], row["hangup_cause"]) == ("1003010", "hangup", 16), row
    truth.assert_answer_time(cdr, row["answered"])
    truth.assert_billsec(cdr, row["billsec"])


def test_pbx2_killed_is_an_outage_of_pbx2_only_while_pbx1_talks_on(servers, phones, lab):
    steady = phones.call("1003000", "71003010", phones.talk_scenario(10000))
    steady_id = truth.call_id_of(servers["pbx1"], "1003000")
    PLACED[("pbx1", steady_id)] = "1003000"
    eventually(lambda: [c for c in lab.arictl("calls", "--server", "pbx1")["data"]
                        if c["id"] == steady_id and c["state"] == "up"], timeout=10)
    killed_at = time.time()
    servers["pbx2"].kill()

    def pbx2_out() -> dict:
        status = lab.arictl("status")["data"]
        assert status["servers"]["pbx2"]["outage_open_since"] is not None, status["servers"]["pbx2"]
        assert [p for p in status["problems"] if p.startswith("pbx2 ")], status["problems"]
        return status
    status = eventually_assert(pbx2_out, timeout=15)
    # the outage is pbx2's: pbx1 linked, named in no problem, its call up
    assert status["servers"]["pbx1"]["outage_open_since"] is None
    assert status["servers"]["pbx1"]["link"]["state"] == "connected"
    assert not [p for p in status["problems"] if p.startswith("pbx1 ")], status["problems"]
    assert [c["id"] for c in lab.arictl("calls", "--server", "pbx1")["data"]] == [steady_id]

    servers["pbx2"].start()

    def pbx2_back() -> bool:
        pbx2 = lab.arictl("status")["data"]["servers"]["pbx2"]
        assert pbx2["outage_open_since"] is None and pbx2["link"]["state"] == "connected", pbx2
        assert pbx2["last_outage"]["disconnected"] >= killed_at - truth.EVENT_SLACK, pbx2
        return True
    eventually_assert(pbx2_back, timeout=30)
    assert steady.poll() is None, "pbx1's call ended before pbx2 was back: make it talk longer"
    assert steady.wait(30) == 0
    row = _history_row(lab, "pbx1", steady_id)
    cdr = _one_cdr(servers["pbx1"], steady_id, "1003000")
    assert (row["end_reason"], row["hangup_cause"]) == ("hangup", 16), row
    truth.assert_billsec(cdr, row["billsec"])
    assert lab.arictl("status")["data"]["servers"]["pbx1"]["last_outage"] is None


def test_the_bus_carried_every_call_of_both_servers_in_order(lab, bus):
    _name, got = bus
    assert {server for server, _id in PLACED} == {"pbx1", "pbx2"}, PLACED

    def per_call() -> dict:
        events = defaultdict(list)
        for key, message in got.read():
            if message["kind"] == "call":
                events[(message["server"], message["data"]["id"])].append((key, message))
        assert all([m["event"] for _k, m in events[call]][-1:] == ["ended"] for call in PLACED), \
            {call: [m["event"] for _k, m in events[call]] for call in PLACED}
        return events
    events = eventually_assert(per_call, timeout=20)
    for (server, call_id), origin in PLACED.items():
        ours = events[(server, call_id)]
        assert [m["event"] for _k, m in ours] == ["ringing", "up", "ended"], (server, call_id, ours)
        assert [m["seq"] for _k, m in ours] == sorted(m["seq"] for _k, m in ours)
        for key, message in ours:
            assert key == f"call.{message['event']}.{server}.{message['client']}", key
            assert message["data"]["origin"] == origin and message["data"]["server"] == server
    # pbx2's restart is on the bus as pbx2's outage, and pbx1 had none
    keys = [key for key, _m in got.messages]
    assert "link.disconnected.pbx2.-" in keys and "link.disconnected.pbx1.-" not in keys
    assert any(k.startswith("c2c.connected.pbx2.") for k in keys), keys
