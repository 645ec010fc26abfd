"""Every captured stream in tests/data/ari/traces (kept in the repository) through the handlers: calls, endpoints, IPs, history."""

from __future__ import annotations

import pytest

from arimonitor.engine import states as S
from arimonitor.engine.store import Store
from tests.engine.replay import TRACES, new_engine_state, replay

ALL_TRACES = sorted(p.name for p in TRACES.glob("*.jsonl") if not p.name.endswith(".rest.jsonl"))


def ended_by_id(fx):
    return {c["id"]: c for c in fx.ended}


@pytest.mark.parametrize("trace", ALL_TRACES)
def test_every_trace_replays_cleanly_and_leaves_nothing_active(trace):
    state, fx, handlers = new_engine_state()
    n = replay(handlers, trace)
    c = state.counters
    # Every announced call is one that ends: a dialled leg folded into its caller's call by
    # the Dial event is never announced as a call of its own (no phantom "ringing").
    ringing = [cid for what, cid in fx.log if what == "call.ringing"]
    assert len(ringing) == len(set(ringing))
    assert set(ringing) == set(ended_by_id(fx)), set(ringing) ^ set(ended_by_id(fx))
    assert c.received == n
    assert c.malformed == 0 and c.unknown_type == 0 and c.handler_error == 0
    assert c.illegal_transitions == 0
    assert c.applied + c.duplicate == n
    # Every capture ends idle: no call, channel, bridge or live recording may be left over.
    assert state.calls == {} and state.channels == {} and state.bridges == {}
    assert state.local_pairs == {} and state.recordings == {}


def test_registration_sets_state_address_and_remote_ips():
    state, fx, handlers = new_engine_state()
    replay(handlers, "registration.jsonl")
    ep = state.endpoints["1003000"]
    assert (ep.state, ep.peer_status, ep.contact_status) == ("offline", "Unreachable", "Removed")
    # The address stays known after the contact is removed, with where it came from.
    assert (ep.ip, ep.port, ep.address_source) == ("127.0.0.1", 5071, "event")
    assert state.endpoints["1013015"].port == 5072
    rip = state.remote_ips["127.0.0.1"]
    assert rip.endpoints == {"1003000", "1013015"}
    assert rip.whitelist is False and rip.source == "event"
    assert rip.first_seen < rip.last_seen
    online = [x for x in fx.log if x[0] == "endpoint.online"]
    assert [x[1] for x in online] == ["1003000", "1013015"]


def test_qualify_round_trip_and_flapping():
    state, fx, handlers = new_engine_state()
    replay(handlers, "registration_qualify.jsonl")
    ep = state.endpoints["1123010"]
    assert ep.state == "offline" and ep.contact_status == "Removed"
    states = [x[0] for x in fx.log if x[0].startswith("endpoint.") and x[1] == "1123010"]
    assert states.count("endpoint.online") == 2 and states.count("endpoint.offline") >= 2


def test_explicit_subscription_duplicates_change_nothing():
    state, fx, handlers = new_engine_state()
    replay(handlers, "registration_endpoint_subscribed.jsonl")
    assert state.counters.duplicate == 9
    (call,) = fx.ended
    assert call["origin"] == "1003000" and call["destination"] == "200"
    assert call["direction"] == S.DIRECTION_OUTBOUND and call["client"] == "100"
    assert [x for x in fx.log if x[0].startswith("call.")] == [
        ("call.ringing", "1795555283.0"), ("call.up", "1795555283.0"), ("call.ended", "1795555283.0")]
    # The only Stasis channel was nobody's to drive: sent back to the dialplan, once.
    assert fx.continued == ["1795555283.0"]


def test_inbound_stasis_call_with_recording():
    state, fx, handlers = new_engine_state()
    replay(handlers, "inbound_stasis_call.jsonl")
    call = ended_by_id(fx)["1795555309.1"]
    assert call["origin"] == "1003000" and call["destination"] == "5551234"
    assert call["hangup_cause"] == 16 and call["end_reason"] == S.END_HANGUP
    assert call["recording"] == "inbound-20261124-212150" and call["recording_state"] == "done"
    assert call["billsec"] == pytest.approx(3.017, abs=0.002)
    assert call["duration"] == pytest.approx(4.022, abs=0.002)
    # RecordingStarted/Finished came twice each: reported once each.
    recs = [x for x in fx.log if x[0].startswith("recording.")]
    assert recs == [("recording.started", "inbound-20261124-212150"),
                    ("recording.finished", "inbound-20261124-212150")]
    assert state.recording_calls["inbound-20261124-212150"]["call_id"] == "1795555309.1"


def test_click_to_call_legs_make_one_call_and_are_never_continued():
    state, fx, handlers = new_engine_state()
    replay(handlers, "originate_click_to_call.jsonl")
    calls = ended_by_id(fx)
    assert set(calls) == {"orig-local-1795555316", "c2c-local-a-1795555320", "c2c-pjsip-a-1795555330"}
    pjsip = calls["c2c-pjsip-a-1795555330"]
    assert (pjsip["origin"], pjsip["destination"], pjsip["client"]) == ("1013010", "1123000", "101")
    assert pjsip["direction"] == S.DIRECTION_ORIGINATED
    assert pjsip["recording"] == "c2c-pjsip-20261124-212212"
    assert calls["c2c-local-a-1795555320"]["hangup_cause"] == 16
    # click2call legs are claimed; only the plain originate into the app is continued.
    assert fx.continued == ["orig-local-1795555316"]
    assert state.counters.claimed == 4


def test_failures_causes_are_mapped_from_dial_status_when_zero():
    state, fx, handlers = new_engine_state()
    replay(handlers, "failures.jsonl")
    calls = ended_by_id(fx)
    causes = {cid: c["hangup_cause"] for cid, c in calls.items()}
    assert causes == {
        "fail-busy": 17, "fail-congestion": 34, "fail-noanswer": 19, "fail-deadcontact": 19,
        "fail-pjsip-busy": 17, "fail-pjsip-busy-create": 17, "fail-pjsip-noanswer": 19,
        "1795555370.24": 17, "1795555371.25": 127, "fail-badtimeout": 16, "fail-setup": 16}
    assert all(c["billsec"] == 0 for cid, c in calls.items()
               if cid not in ("fail-badtimeout", "fail-setup"))
    assert calls["fail-pjsip-busy"]["destination"] == "1013015"
    assert calls["1795555370.24"]["client"] == "100"
    # 1013020 registered, was rung dead, dropped: state and address follow.
    assert state.endpoints["1013020"].state == "offline"
    assert state.remote_ips["127.0.0.1"].endpoints >= {"1013015", "1013020", "1123000"}


def test_endpoint_unknown_to_files_is_tracked_and_flagged():
    state, _fx, handlers = new_engine_state()
    line = (b'{"type":"PeerStatusChange","timestamp":"2026-11-24T21:21:13.798+0000",'
            b'"endpoint":{"technology":"PJSIP","resource":"9990001","state":"online","channel_ids":[]},'
            b'"peer":{"peer_status":"Reachable"}}')
    handlers.apply(line, 1.0)
    ep = state.endpoints["9990001"]
    assert ep.state == "online" and ep.in_files is False
    assert state.endpoints["1003000"].in_files is True and state.endpoints["1003000"].client == "100"


def test_history_rows_from_a_replay(tmp_path):
    store = Store(tmp_path / "h.sqlite")
    _state, fx, handlers = new_engine_state()
    replay(handlers, "failures.jsonl")
    for view in fx.ended:
        store.save_call(view)
    rows = store.history(limit=100)
    assert len(rows) == 11
    assert rows[0]["ended"] >= rows[-1]["ended"]
    busy = next(r for r in rows if r["id"] == "fail-pjsip-busy")
    assert busy["hangup_cause"] == 17 and busy["client"] == "101" and busy["state"] == "ended"
    assert [r["id"] for r in store.history(client="100")] == ["1795555370.24"]
    # Saving again (a replayed end) does not duplicate a row.
    store.save_call(fx.ended[0])
    assert store.count_calls() == 11
