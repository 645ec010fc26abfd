"""The real engine and reader processes against the in-process ARI simulator."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from arimonitor import protocol
from arimonitor.sim.testing import SimServer
from tests.engine.stack import control_address, ctl, start_stack, write_config
from tests.support import eventually, eventually_assert

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sim():
    with SimServer(endpoints=["1013010", "1123000", "1003000", "1013015", "1013020"],
                   time_scale=0.2) as server:
        yield server


@pytest.fixture
def stack(sim, processes, tmp_path):
    ini = write_config(tmp_path, sim)
    procs = start_stack(processes, ini, tmp_path)
    address = control_address(tmp_path)
    eventually(lambda: _linked(address), timeout=15)
    return {"address": address, "procs": procs, "ini": ini, "tmp": tmp_path}


def _status_soon(address: str) -> dict:
    """`status`, or {} while the engine is still starting (slow under load): ask again."""
    try:
        return ctl(address, "status", timeout=1)["data"]
    except TimeoutError:
        return {}


def _linked(address: str) -> bool:
    return _status_soon(address).get("link", {}).get("state") == "connected"


def status(stack) -> dict:
    return ctl(stack["address"], "status")["data"]


def stats(stack) -> dict:
    return ctl(stack["address"], "stats")["data"]


def active(stack) -> list[dict]:
    return ctl(stack["address"], "calls")["data"]


def history(stack, *args: str) -> list[dict]:
    return ctl(stack["address"], "history", *args)["data"]


def test_registration_and_a_call_from_ring_to_history(sim, stack):
    c = sim.control
    c.register("1013010", ip="10.0.0.5", port=5070)
    c.register("1123000", ip="10.0.0.6", port=5072)

    def registered():
        eps = {e["id"]: e for e in ctl(stack["address"], "_engine_endpoints")["data"]}
        a = eps["1013010"]
        assert (a["state"], a["ip"], a["port"], a["address_source"]) == ("online", "10.0.0.5", 5070, "event")
        assert eps["1123000"]["ip"] == "10.0.0.6"
    eventually_assert(registered)
    ips = {r["ip"]: r for r in ctl(stack["address"], "_engine_ips")["data"]}
    assert ips["10.0.0.5"]["endpoints"] == ["1013010"] and ips["10.0.0.5"]["whitelist"] is False

    caller = c.call("1013010", "1123000")
    (call,) = eventually(lambda: [x for x in active(stack) if x["state"] == "up"])
    assert call["line"] == "1013010 -> 1123000 (up)" and call["client"] == "101"
    assert call["direction"] == "internal"
    c.hangup(caller)
    (row,) = eventually(lambda: history(stack))
    assert (row["id"], row["origin"], row["destination"]) == (call["id"], "1013010", "1123000")
    assert row["hangup_cause"] == 16 and row["end_reason"] == "hangup" and row["billsec"] >= 0
    assert active(stack) == []
    calls_log = Path(stack["tmp"], "var", "log", "calls.log").read_text()
    assert "ended call=" in calls_log and "1013010 -> 1123000" in calls_log

    c.unregister("1013010")
    eventually_assert(lambda: _endpoint(stack, "1013010")["state"] == "offline" or None)
    # The remote-IP registry is in SQLite before it is shown: it survives in the file.
    import sqlite3
    db = sqlite3.connect(Path(stack["tmp"], "var", "arimonitor.sqlite"))
    assert db.execute("SELECT whitelist FROM remote_ips WHERE ip='10.0.0.5'").fetchone() == (0,)


def test_a_registration_while_a_resync_is_in_flight_is_not_undone_by_its_older_snapshot(sim, stack):
    """The resync reads /endpoints, then waits on a slow /channels; the phone registers in
    between. The snapshot saw it offline, the event later: the event wins."""
    import threading
    c = sim.control
    c.rest_fault(seconds=1.0, count=1, path="/channels")  # rest_timeout is 2 s
    c.clear_requests()
    done = {}
    recovery = threading.Thread(target=lambda: done.update(ctl(stack["address"], "recovery", timeout=15)))
    recovery.start()
    try:
        eventually(lambda: any(r["method"] == "GET" and r["path"] == "/channels" for r in c.requests()),
                   timeout=10)
        c.register("1013010", ip="10.0.0.5", port=5070)
    finally:
        recovery.join(20)
    assert done.get("status") == "ok", done
    ep = _endpoint(stack, "1013010")
    assert (ep["state"], ep["ip"], ep["port"]) == ("online", "10.0.0.5", 5070)


def _endpoint(stack, ep_id):
    return next(e for e in ctl(stack["address"], "_engine_endpoints")["data"] if e["id"] == ep_id)


def test_reader_reconnect_after_websocket_drop_leaves_no_stale_call(sim, stack):
    c = sim.control
    c.register("1013010")
    c.register("1123000")
    caller = c.call("1013010", "1123000")
    eventually(lambda: [x for x in active(stack) if x["state"] == "up"])
    before = stats(stack)["counters"]["link_down"]
    c.drop_websocket()
    c.hangup(caller)  # while the reader is away: its events are never seen
    eventually(lambda: stats(stack)["counters"]["link_down"] > before)
    (row,) = eventually(lambda: history(stack))
    assert row["end_reason"] == "lost during outage"
    eventually_assert(lambda: active(stack) == [] or None)
    s = status(stack)
    assert s["link"]["state"] == "connected"
    # The outage is recorded with its unseen window once the resync is done.
    import sqlite3
    db = sqlite3.connect(Path(stack["tmp"], "var", "arimonitor.sqlite"))
    outage = eventually(lambda: db.execute("SELECT unseen, changes FROM outages").fetchone())
    assert outage[0] is not None and outage[0] >= 0
    # ... and shown: the window and what the resync changed, in `status` and `stats`.
    reply = ctl(stack["address"], "status")
    last = reply["data"]["last_outage"]
    assert last["unseen"] == pytest.approx(outage[0], abs=0.01) and last["unseen"] > 0
    assert last["resynced"] - last["disconnected"] == pytest.approx(last["unseen"], abs=0.01)
    assert (last["changes"]["ended"], last["changes"]["adopted"]) == (1, 0)
    # endpoint changes depend on what else the shared simulator did meanwhile; shown as stored
    assert last["changes"]["changed"] == json.loads(outage[1])["changed"]
    assert "last outage:" in reply["text"] and "ended 1" in reply["text"]
    reply = ctl(stack["address"], "stats")
    assert reply["data"]["counters"]["outages"] == 1 and "outages" in reply["text"]


def test_simulator_restart_ends_every_call_when_asterisk_was_last_seen(sim, stack):
    c = sim.control
    c.register("1013010")
    c.register("1123000")
    c.call("1013010", "1123000")
    eventually(lambda: active(stack))
    before = status(stack)["state"]["asterisk_startup"]
    c.restart(down_for=0.3)
    eventually(lambda: status(stack)["state"]["asterisk_startup"] != before, timeout=15)
    (row,) = eventually(lambda: history(stack))
    assert (row["end_reason"], row["hangup_cause"]) == ("Asterisk went away", 0)
    assert active(stack) == []
    assert stats(stack)["counters"]["asterisk_restarts"] == 1
    # ended when the link was lost, not when Asterisk was seen again
    outage = eventually(lambda: status(stack)["last_outage"], timeout=15)
    assert row["ended"] <= outage["disconnected"] + 0.5
    assert status(stack)["link"]["state"] == "connected"


def test_malformed_frames_are_counted_and_never_stop_the_engine(sim, stack):
    c = sim.control
    for kind in ("not_json", "missing_fields", "no_type", "not_object", "empty"):
        c.malformed(kind, count=2)
    c.malformed("unknown_type", count=3)
    # Each bad frame counts as malformed, repeats too; byte-identical repeats of a frame that
    # parsed are duplicates (Asterisk repeats events).
    counters = eventually(lambda: (x := stats(stack)["counters"])["malformed"] >= 10 and x)
    counters = eventually(lambda: (x := stats(stack)["counters"])["duplicate"] >= 2 and x)
    assert counters["malformed"] == 10 and counters["unknown_type"] == 1
    assert counters["handler_error"] == 0
    c.register("1013010")
    eventually_assert(lambda: _endpoint(stack, "1013010")["state"] == "online" or None)
    log = Path(stack["tmp"], "var", "log", "engine.log").read_text()
    assert "malformed frame" in log and "this is not JSON" in log


def test_rest_stall_is_detected_while_the_websocket_stays_up(sim, stack):
    sim.control.rest_fault(seconds=1.5, path="/asterisk/info")
    probe = eventually(lambda: (p := stats(stack)["probe"])["stalls"] >= 1 and p, timeout=15)
    assert probe["max_latency_ms"] >= 1000
    assert status(stack)["link"]["state"] == "connected"
    sim.control.clear_faults()


def test_control_socket_refuses_bad_requests_with_codes(stack):
    import json

    import zmq
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(stack["address"])
    try:
        for payload, code in ((b"{not json", protocol.E_MALFORMED),
                              (b'{"id":"1","cmd":"status","api":999}', protocol.E_API_VERSION),
                              (b'{"id":"2","cmd":"nosuch","api":1}', protocol.E_UNKNOWN_COMMAND),
                              (b'{"id":"3","cmd":"history","args":[],"opts":{"limit":"x"},"api":1}',
                               protocol.E_BAD_ARGUMENTS)):
            sock.send(payload)
            assert sock.poll(5000)
            reply = json.loads(sock.recv())
            assert reply["status"] == "error" and reply["code"] == code, reply
    finally:
        sock.close(0)
    mode = os.stat(stack["address"][len("ipc://"):]).st_mode & 0o777
    assert mode == 0o600
    assert ctl(stack["address"], "recovery", timeout=15)["data"]["adopted"] == 0


def test_engine_kill_9_under_load_comes_back_equal_to_ari(sim, stack, processes):
    import requests

    c = sim.control
    c.register("1013010")
    c.register("1123000")
    for ep in ("1003000", "1013015", "1013020"):
        c.register(ep)
    for ep in ("1013010", "1013015"):
        c.behaviour(ep, talk=1000)  # callers that do not hang up on their own
    long_call = c.call("1013010", "1123000")   # up before the kill, still up after
    c.load(endpoints=30, calls_per_second=15, talk=1.0)
    eventually(lambda: len(history(stack, "--limit", "100")) >= 5, timeout=20)
    recorded = {r["id"] for r in history(stack, "--limit", "1000")}
    engine = stack["procs"]["engine"]
    os.killpg(engine.pid, signal.SIGKILL)
    engine.wait()
    during = c.call("1013015", "1013020")   # placed while no engine runs: must be adopted
    parked = c.call("1003000", "5551234")   # enters Stasis with no engine: continued once seen
    env = {"ARIMONITOR_CONFIG": str(stack["ini"])}
    processes.python("procs/call_engine.py", env=env, log=Path(stack["tmp"], "out", "engine2.out"))
    eventually(lambda: _status_soon(stack["address"]).get("last_resync"), timeout=15)
    c.load_stop()
    auth = (sim.user, sim.password)

    def equal_to_ari():
        ari_channels = {ch["id"] for ch in requests.get(f"{sim.url}/channels", auth=auth, timeout=5).json()}
        ours = {ch for call in active(stack) for ch in call["channels"]}
        assert ours == ari_channels
        ari_eps = {e["resource"]: e["state"] for e in requests.get(f"{sim.url}/endpoints", auth=auth, timeout=5).json()}
        eps = {e["id"]: e["state"] for e in ctl(stack["address"], "_engine_endpoints")["data"]}
        assert {k: eps.get(k) for k in ari_eps} == ari_eps
    eventually_assert(equal_to_ari, timeout=20)
    ours = {ch for call in active(stack) for ch in call["channels"]}
    assert {long_call, during} <= ours
    continued = [r for r in c.requests() if r["method"] == "POST" and r["path"].endswith("/continue")]
    assert any(parked in r["path"] for r in continued)
    c.hangup(long_call)
    eventually(lambda: long_call in {ch for r in history(stack, "--limit", "10000") for ch in r["channels"]}
               or any(r["id"] == long_call for r in history(stack, "--limit", "10000")))
    after = {r["id"] for r in history(stack, "--limit", "10000")}
    assert recorded <= after


def _restart_engine(stack, processes, name: str) -> None:
    engine = stack["procs"]["engine"]
    os.killpg(engine.pid, signal.SIGKILL)
    engine.wait()
    env = {"ARIMONITOR_CONFIG": str(stack["ini"])}
    stack["procs"]["engine"] = processes.python("procs/call_engine.py", env=env,
                                                log=Path(stack["tmp"], "out", name))


def test_engine_kill_9_mid_call_keeps_the_true_answer_time(sim, stack, processes):
    c = sim.control
    c.register("1013010")
    c.register("1123000")
    c.behaviour("1013010", talk=1000)
    caller = c.call("1013010", "1123000")
    (call,) = eventually(lambda: [x for x in active(stack) if x["state"] == "up"])
    _restart_engine(stack, processes, "engine2.out")
    killed_at = time.time()
    eventually(lambda: _status_soon(stack["address"]).get("last_resync"), timeout=15)
    (again,) = active(stack)
    # the same call, under the same id, with the times the first run saw
    assert (again["id"], again["origin"], again["destination"]) == (call["id"], "1013010", "1123000")
    assert again["answered"] == pytest.approx(call["answered"], abs=0.001)
    assert again["created"] == pytest.approx(call["created"], abs=0.001)
    assert again["adopted"] is False and again["direction"] == call["direction"]
    # the reader's PUSH drops what it cannot send: hang up once it reaches the new engine
    eventually(lambda: status(stack)["link"]["state"] == "connected", timeout=10)
    c.hangup(caller)
    (row,) = eventually(lambda: history(stack))
    assert row["id"] == call["id"] and row["end_reason"] == "hangup"
    assert row["answered"] == pytest.approx(call["answered"], abs=0.001)
    assert row["billsec"] == pytest.approx(row["ended"] - call["answered"], abs=0.01)
    assert row["billsec"] > row["ended"] - killed_at  # more than an adoption-time answer gives
    # the engine's own downtime is an outage too, closed by its first resync
    # (closed once the reader is back and a resync has run, which may trail the link line)
    last = eventually(lambda: status(stack)["last_outage"], timeout=15)
    assert last["changes"]["restored"] == 1 and last["unseen"] > 0
    import sqlite3
    db = sqlite3.connect(Path(stack["tmp"], "var", "arimonitor.sqlite"))
    eventually(lambda: db.execute("SELECT COUNT(*) FROM active_calls").fetchone() == (0,))


def test_wrong_password_is_an_auth_failure_not_an_outage(sim, processes, tmp_path):
    import json

    ini = write_config(tmp_path, sim, ari={"password": "not-" + sim.password})
    start_stack(processes, ini, tmp_path, reader=False)
    address = control_address(tmp_path)

    def auth_failed():
        reply = ctl(address, "status", timeout=1)
        return reply["data"]["probe"]["auth_failed"] and reply
    reply = eventually(auth_failed, timeout=15)
    probe = reply["data"]["probe"]
    assert not probe["stalled"] and "401" in probe["auth_error"]
    assert "ARI refused user 'arimonitor'" in probe["auth_error"]
    assert "PROBLEM:    ari auth: FAILED" in reply["text"] and "unavailable" not in reply["text"].lower()
    assert sim.password not in json.dumps(reply)
    # probe and resync keep failing, but it is one episode: one warning, one count
    eventually(lambda: stats_of(address)["probe"]["failed"] >= 2, timeout=10)
    counters = stats_of(address)["counters"]
    assert counters["auth_failures"] == 1 and counters["resyncs"] == 0
    # the warning event (warning.ari_auth on PUB; its log line, one per episode)
    log = Path(tmp_path, "var", "log", "engine.log").read_text()
    assert log.count("ari_auth: ARI authentication failed") == 1
    assert "Asterisk unavailable" not in log and "rest_stall" not in log
    # a console command that needs ARI says which: credentials, not a dead Asterisk
    refused = ctl(address, "recovery", timeout=30)
    assert refused["status"] == "error" and refused["code"] == protocol.E_ARI_AUTH
    assert sim.password not in json.dumps(refused)


def stats_of(address: str) -> dict:
    return ctl(address, "stats", timeout=2)["data"]


def test_dialplan_calls_across_two_engine_kill_9s_are_one_history_row_each(sim, stack, processes):
    """Issue 13's "one adopted dialplan call became two rows": phone-to-phone calls (the
    dialplan's Dial, never in Stasis) ringing, talking, ending and placed while the engine is
    down, across two kill -9s. Each is exactly one history row, origin -> destination."""
    c = sim.control
    pairs = [(f"10130{n:02d}", f"11230{n:02d}") for n in range(30, 38)]
    for caller, callee in pairs:
        c.add_endpoint(caller)
        c.add_endpoint(callee)
        c.register(caller)
        c.register(callee)
        c.behaviour(caller, talk=1000)  # nobody hangs up on their own: the test does
    # rings until the caller hangs up or the Dial times out (30 s, 6 s at this time scale)
    for _caller, callee in pairs[2:4] + pairs[6:7]:
        c.behaviour(callee, mode="noanswer")
    placed: dict[str, tuple[str, str]] = {}

    def call(n: int) -> str:
        caller, callee = pairs[n]
        placed[c.call(caller, callee)] = (caller, callee)
        return next(k for k, v in placed.items() if v == pairs[n])

    def ours() -> set[str]:
        return {ch for x in active(stack) for ch in x["channels"]}
    talking, survivor, ringing = call(0), call(1), call(2)
    rings_on = call(3)
    eventually(lambda: {talking, survivor, ringing, rings_on} <= ours() or None, timeout=15)
    eventually(lambda: sum(x["state"] == "up" for x in active(stack)) >= 2, timeout=15)
    _restart_engine(stack, processes, "engine2.out")
    c.hangup(talking)                       # talked, ended while no engine watched
    c.hangup(ringing)                       # rang, given up while no engine watched
    during = call(4)                        # placed while no engine runs: adopted
    eventually(lambda: _status_soon(stack["address"]).get("last_resync"), timeout=20)
    eventually(lambda: {survivor, during} <= ours() or None, timeout=20)
    eventually(lambda: status(stack)["link"]["state"] == "connected", timeout=15)
    up_then = call(5)
    eventually(lambda: up_then in ours() and sum(x["state"] == "up" for x in active(stack)) >= 3,
               timeout=15)
    _restart_engine(stack, processes, "engine3.out")
    c.hangup(up_then)                       # adopted once, ended while no engine watched
    last = call(6)                          # rings across the second restart
    eventually(lambda: _status_soon(stack["address"]).get("last_resync"), timeout=20)
    eventually(lambda: {survivor, during} <= ours() or None, timeout=20)
    eventually(lambda: status(stack)["link"]["state"] == "connected", timeout=15)
    for caller_leg in (survivor, rings_on, during, last):
        with contextlib.suppress(Exception):  # a ringing one may have timed out already
            c.hangup(caller_leg)
    eventually(lambda: active(stack) == [] or None, timeout=20)

    def rows_of() -> dict[str, list[dict]]:
        found: dict[str, list[dict]] = {k: [] for k in placed}
        for row in history(stack, "--limit", "1000"):
            for caller_leg in placed:
                if caller_leg == row["id"] or caller_leg in row["channels"]:
                    found[caller_leg].append(row)
        return found
    found = eventually(lambda: (f := rows_of()) and all(f.values()) and f, timeout=15)
    wrong = {k: [(r["id"], r["origin"], r["destination"], r["end_reason"]) for r in rows]
             for k, rows in found.items()
             if len(rows) != 1 or (rows[0]["origin"], rows[0]["destination"]) != placed[k]}
    assert wrong == {}, f"placed {placed}"
