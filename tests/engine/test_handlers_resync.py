"""Handlers' extension points and bad input; resync reconciliation, without any socket."""

from __future__ import annotations

import json

from arimonitor.engine import resync as R
from arimonitor.engine import states as S
from tests.engine.replay import TRACES, new_engine_state

REST = TRACES / "rest"
INFO = json.loads((REST / "asterisk_info.json").read_text())


def _lines(trace):
    return (TRACES / trace).read_bytes().splitlines()


def test_component_claims_a_channel_and_listeners_see_applied_events():
    state, fx, handlers = new_engine_state()
    seen = []
    handlers.on_event("StasisStart", lambda event, t: seen.append(event["channel"]["id"]))
    handlers.add_claimer("recorder", lambda ch, args: ch.endpoint == "1003000")
    for n, line in enumerate(_lines("inbound_stasis_call.jsonl")):
        handlers.apply(line, float(n))
    assert seen == ["1795555309.1"]
    assert fx.continued == []  # claimed: not sent back to the dialplan
    assert state.counters.claimed == 1


def test_a_failing_listener_or_claimer_is_counted_not_fatal():
    state, fx, handlers = new_engine_state()
    handlers.on_event("ChannelCreated", lambda e, t: 1 / 0)
    handlers.add_claimer("broken", lambda ch, args: 1 / 0)
    for n, line in enumerate(_lines("inbound_stasis_call.jsonl")):
        handlers.apply(line, float(n))
    assert state.counters.handler_error == 1
    assert fx.continued == ["1795555309.1"] and len(fx.ended) == 1


def test_bad_frames_are_counted_by_kind():
    state, _fx, handlers = new_engine_state()
    for frame in (b"{nope", b"[1,2]", b'{"type": 5}', b'{"type":"ChannelCreated"}',
                  b'{"type":"ChannelStateChange","channel":{"id":"x"}}', b"\xff\xfe",
                  b'{"type":"BrandNewEvent"}'):
        handlers.apply(frame, 1.0)
    c = state.counters
    assert (c.malformed, c.unknown_type, c.applied, c.handler_error) == (6, 1, 0, 0)


def test_the_same_bad_frame_many_times_is_counted_malformed_each_time():
    state, _fx, handlers = new_engine_state()
    for frame in (b"{nope", b'{"type":"ChannelCreated"}', b"[1]"):
        for _ in range(100):
            handlers.apply(frame, 1.0)
    assert (state.counters.malformed, state.counters.duplicate) == (300, 0)


def _snapshot(channels=(), bridges=(), endpoints=None, info=INFO, started=100.0):
    eps = json.loads((REST / "endpoints_while_registered.json").read_text()) if endpoints is None else endpoints
    return R.Snapshot(started, info, eps, list(channels), list(bridges))


def test_reconcile_adopts_ends_and_refreshes():
    state, fx, handlers = new_engine_state()
    channels = json.loads((REST / "channels_click2call_pjsip.json").read_text())
    bridges = json.loads((REST / "bridge_click2call_pjsip.json").read_text())
    bridges = bridges if isinstance(bridges, list) else [bridges]
    first = R.reconcile(handlers, _snapshot(channels, bridges), "arimonitor", now=200.0)
    assert first["adopted"] == 1 and first["ended"] == 0
    (call,) = state.calls.values()
    assert call.adopted and call.state == S.CALL_UP and call.channels == {c["id"] for c in channels}
    assert (call.origin, call.destination) == ("1013010", "1123000")
    assert state.endpoints["1013015"].state == "online" and state.endpoints["9990001"].in_files is False
    # Claimed as click-to-call legs from their Stasis app data: never continued.
    assert fx.continued == [] and all(ch.claimed_by == "clicktocall" for ch in state.channels.values())
    # The same snapshot again changes nothing.
    again = R.reconcile(handlers, _snapshot(channels, bridges), "arimonitor", now=201.0)
    assert (again["adopted"], again["ended"], again["changed"]) == (0, 0, 0)
    # ARI lost the call during an outage: ended with that reason.
    gone = R.reconcile(handlers, _snapshot(), "arimonitor", now=300.0)
    assert gone["ended"] == 1 and state.calls == {}
    assert fx.ended[-1]["end_reason"] == S.END_LOST and fx.ended[-1]["ended"] == 300.0


def test_reconcile_respects_events_seen_while_the_snapshot_was_in_flight():
    state, _fx, handlers = new_engine_state()
    channels = json.loads((REST / "channels_during_call.json").read_text())
    state.touched = set()
    # The channel is destroyed by an event after the snapshot (which still lists it) began.
    state.touched.add(channels[0]["id"])
    result = R.reconcile(handlers, _snapshot(channels), "arimonitor", now=5.0)
    assert result["adopted"] == 0 and state.channels == {}


def _registered(resource, ip, port):
    return {"type": "ContactStatusChange",
            "endpoint": {"technology": "PJSIP", "resource": resource, "state": "online",
                         "channel_ids": []},
            "contact_info": {"uri": f"sip:{resource}@{ip}:{port}", "contact_status": "Reachable",
                             "aor": resource, "roundtrip_usec": "0"}}


def test_an_endpoint_an_event_registered_while_the_snapshot_was_in_flight_stays_online():
    """The race CI met: the resync's GET /endpoints saw the phone before it registered, its
    registration event was applied before the snapshot: the older snapshot must not win."""
    from arimonitor.ari.contacts import SOURCE_AMI, Contact
    state, _fx, handlers = new_engine_state()
    state.touched = set()
    handlers.apply_event(_registered("1013010", "10.0.0.5", 5070), 101.0)
    handlers.apply_event(_registered("7770001", "10.0.0.7", 5060), 101.0)  # not in the files
    before = [{"technology": "PJSIP", "resource": "1013010", "state": "offline", "channel_ids": []},
              {"technology": "PJSIP", "resource": "1123000", "state": "online", "channel_ids": []}]
    snap = _snapshot(endpoints=before)
    snap.contacts = [Contact("1013010", "sip:1013010@10.9.9.9:5060", "10.9.9.9", 5060, "Unknown",
                             source=SOURCE_AMI)]
    result = R.reconcile(handlers, snap, "arimonitor", now=102.0)
    eps = state.endpoints
    assert (eps["1013010"].state, eps["1013010"].ip, eps["1013010"].port) == ("online", "10.0.0.5", 5070)
    assert eps["1013010"].address_source == "event"
    assert eps["7770001"].state == "online"    # unlisted by the older snapshot, not "unknown"
    assert eps["1123000"].state == "online"    # untouched: the snapshot applies
    assert result["changed"] >= 1
    # Once the resync is over, the next snapshot applies as usual.
    state.touched = None
    R.reconcile(handlers, _snapshot(endpoints=before), "arimonitor", now=103.0)
    assert eps["1013010"].state == "offline" and eps["7770001"].state == "unknown"


def test_asterisk_restart_ends_every_call():
    state, fx, handlers = new_engine_state()
    channels = json.loads((REST / "channels_during_call.json").read_text())
    R.reconcile(handlers, _snapshot(channels), "arimonitor", now=10.0)
    assert len(state.calls) == 1
    restarted = json.loads(json.dumps(INFO))
    restarted["status"]["startup_time"] = "2026-11-24T22:00:00.000+0000"
    # the link was lost at 12.0: the call ends then, cause unknown, whatever ANSWER said
    result = R.reconcile(handlers, _snapshot([], info=restarted), "arimonitor", now=20.0, last_alive=12.0)
    assert result["asterisk_restart"] and result["ended"] == 1
    assert state.counters.asterisk_restarts == 1
    assert fx.ended[0]["end_reason"] == S.END_ASTERISK_GONE == "Asterisk went away"
    assert (fx.ended[0]["ended"], fx.ended[0]["hangup_cause"]) == (12.0, 0)
    # A channel sitting in our Stasis app that nobody drives is sent back to the dialplan
    # when adopted (both captures show the same channel in Stasis(arimonitor)).
    ringing = json.loads((REST / "channels_ringing_in_stasis.json").read_text())
    R.reconcile(handlers, _snapshot(ringing, info=restarted), "arimonitor", now=30.0)
    assert fx.continued == [channels[0]["id"], ringing[0]["id"]]


def test_adopted_channels_of_a_saved_call_get_its_id_and_times_back():
    state, fx, handlers = new_engine_state()
    channels = json.loads((REST / "channels_click2call_pjsip.json").read_text())
    ids = sorted(c["id"] for c in channels)
    assert len(ids) == 2
    row = {"id": ids[1], "created": 50.0, "answered": 60.0, "client": "101", "origin": "1013010",
           "destination": "1123000", "direction": "originated", "dial_status": "ANSWER",
           "channels": ids, "server": state.server}
    # no bridge in the snapshot: without the saved row the legs could be two calls
    result = R.reconcile(handlers, _snapshot(channels), "arimonitor", now=200.0, persisted=[row])
    assert (result["adopted"], result["restored"]) == (1, 1)
    (call,) = state.calls.values()
    assert (call.id, call.created, call.answered, call.adopted) == (ids[1], 50.0, 60.0, False)
    assert (call.direction, call.dial_status, call.channels) == ("originated", "ANSWER", set(ids))
    assert all(state.channels[c].call_id == ids[1] for c in ids)
    assert ("call.up", ids[1]) in fx.log
    R.reconcile(handlers, _snapshot(), "arimonitor", now=300.0)
    assert (fx.ended[-1]["id"], fx.ended[-1]["billsec"], fx.ended[-1]["adopted"]) == (ids[1], 240.0, False)


def test_leg_b_whose_leg_a_ended_while_we_were_down_is_filed_under_leg_a():
    """The saved row knows only leg A (written when A rang); A hung up during the restart.
    Leg B, still up, is that call: never a call of its own named after B."""
    state, _fx, handlers = new_engine_state()
    channels = json.loads((REST / "channels_click2call_pjsip.json").read_text())
    leg_a, leg_b = "c2c-pjsip-a-1795555330", "c2c-pjsip-b-1795555330"
    only_b = [c for c in channels if c["id"] == leg_b]
    row = {"id": leg_a, "created": 50.0, "answered": 60.0, "client": "101", "origin": "",
           "destination": "1013010", "direction": "originated", "dial_status": "",
           "channels": [leg_a], "server": state.server}
    result = R.reconcile(handlers, _snapshot(only_b), "arimonitor", now=200.0, persisted=[row])
    assert result["restored"] == 1
    (call,) = state.calls.values()
    assert (call.id, call.created, call.answered) == (leg_a, 50.0, 60.0)
    assert state.channels[leg_b].call_id == leg_a
    # the real call: A's device (the row saved "originate -> A") -> B's
    assert (call.origin, call.destination) == ("1013010", "1123000")


def test_a_c2c_row_saved_while_only_leg_a_rang_does_not_turn_origin_into_destination():
    """The fault run's "A -> A" and "B -> A" rows: the saved row was written while only leg A
    rang ("originate -> A"); after the restart both legs are up. One row of the real call."""
    state, _fx, handlers = new_engine_state()
    channels = json.loads((REST / "channels_click2call_pjsip.json").read_text())
    leg_a, leg_b = "c2c-pjsip-a-1795555330", "c2c-pjsip-b-1795555330"
    both = [c for c in channels if c["id"] in (leg_a, leg_b)]
    assert len(both) == 2
    row = {"id": leg_a, "created": 50.0, "answered": 60.0, "client": "101", "origin": "",
           "destination": "1013010", "direction": "originated", "dial_status": "",
           "channels": [leg_a], "server": state.server}
    R.reconcile(handlers, _snapshot(list(reversed(both))), "arimonitor", now=200.0, persisted=[row])
    (call,) = state.calls.values()
    assert call.id == leg_a and call.channels == {leg_a, leg_b}
    assert (call.origin, call.destination) == ("1013010", "1123000")
    assert (call.client, call.direction) == ("101", "originated")


def test_a_saved_call_answered_while_nobody_watched_keeps_the_adoption_time():
    state, _fx, handlers = new_engine_state()
    channels = json.loads((REST / "channels_during_call.json").read_text())
    row = {"id": channels[0]["id"], "created": 50.0, "answered": None, "client": "", "origin": "",
           "destination": "", "direction": "", "dial_status": "", "channels": [channels[0]["id"]]}
    R.reconcile(handlers, _snapshot(channels), "arimonitor", now=200.0, persisted=[row])
    (call,) = state.calls.values()
    assert call.created == 50.0
    if call.state == S.CALL_UP:
        assert call.answered == 200.0 and call.adopted  # a lower bound, and flagged as such


def test_active_calls_are_saved_on_ringing_and_up_once_per_burst_and_deleted_at_end():
    from arimonitor.engine.notifier import Notifier
    from arimonitor.engine.outputs import EngineEffects
    from arimonitor.engine.state import Call, Counters
    from arimonitor.engine.store import Store

    store = Store(":memory:")
    fx = EngineEffects(store, Notifier(None), Counters(), lambda _id: None, None, "asterisk1")
    a, b = Call("a", "asterisk1", 1.0), Call("b", "asterisk1", 2.0)
    a.channels, b.channels = {"a", "a2"}, {"b"}
    fx.call_started(a)  # outside a burst: written at once
    assert [r["id"] for r in store.load_active("asterisk1")] == ["a"]
    fx.hold()
    a.answered = 5.0
    fx.call_answered(a)
    fx.call_started(b)
    b.ended = 3.0
    fx.call_ended(b)    # rang and ended within one burst: never written
    assert store.load_active("asterisk1")[0]["answered"] is None
    fx.release()
    (row,) = store.load_active("asterisk1")
    assert (row["id"], row["answered"], row["channels"]) == ("a", 5.0, ["a", "a2"])
    a.ended = 9.0
    fx.call_ended(a)
    assert store.load_active("asterisk1") == [] and store.count_calls() == 2
    store.save_active([("asterisk1", "stale", 1.0, 2.0, "101", "1013010", "1013020", "internal", "ANSWER",
                        '["s1"]', 1.0)], [])
    # up when the engine stopped, gone at the next start: in the history with a reason, not dropped
    assert fx.prune_active(set(), 10.0, S.END_ENGINE_DOWN) == 1 and store.load_active("asterisk1") == []
    stale = next(r for r in store.history() if r["id"] == "stale")
    assert (stale["end_reason"], stale["ended"], stale["billsec"], stale["origin"]) == (
        S.END_ENGINE_DOWN, 10.0, 8.0, "1013010")


def _services():
    """The link monitor (probe, auth) over a resyncer that is never started."""
    from arimonitor.engine.link import AriAuth, LinkMonitor
    from arimonitor.engine.loop import Loop
    from arimonitor.engine.notifier import Notifier
    from arimonitor.engine.probe import ProbeStats
    from arimonitor.engine.resyncer import Resyncer
    from arimonitor.engine.store import Store

    state, fx, handlers = new_engine_state()
    auth = AriAuth(ProbeStats(), handlers)
    resyncer = Resyncer(handlers=handlers, store=Store(":memory:"), notifier=Notifier(None),
                        loop=Loop(), app="arimonitor", snapshot=lambda: None, auth=auth)
    link = LinkMonitor(handlers=handlers, notifier=Notifier(None), resyncer=resyncer, auth=auth)
    return state, fx, link


def test_auth_failure_warns_once_per_episode_and_is_not_a_stall():
    state, fx, services = _services()
    for _ in range(3):
        services.on_probe(False, 0.01, None, "GET /asterisk/info: HTTP 401: ARI refused user 'x'", True)
    warnings = [entry for entry in fx.log if entry[0].startswith("warning.")]
    assert [w[0] for w in warnings] == ["warning.ari_auth"]
    view = services.probe.view()
    assert view["auth_failed"] and not view["stalled"] and view["failed"] == 3
    assert state.counters.auth_failures == 1
    services.on_probe(True, 0.01, INFO, "", False)
    assert not services.probe.view()["auth_failed"]
    services.on_probe(False, 0.01, None, "HTTP 401", True)  # a new episode
    assert state.counters.auth_failures == 2
    services.resyncer.loop.close()


def test_an_http_error_answer_is_an_error_not_a_stall():
    from arimonitor.commands.engine_state import _probe_state

    _state, fx, services = _services()
    for _ in range(3):
        services.on_probe(False, 0.01, None, "GET /asterisk/info: HTTP 500 Internal Server Error",
                          False, 500)
    view = services.probe.view()
    assert not view["stalled"] and view["failed"] == 3 and view["stalls"] == 0
    assert _probe_state(view).startswith("ERROR - GET /asterisk/info: HTTP 500 Internal Server Error since ")
    assert [w[0] for w in fx.log if w[0].startswith("warning.")] == ["warning.rest_error"]
    services.on_probe(False, 5.0, None, "timed out", False, None)  # no answer at all: a stall
    assert _probe_state(services.probe.view()).startswith("STALLED - timed out since ")
    services.on_probe(True, 0.01, INFO, "", False, None)
    assert _probe_state(services.probe.view()) == "ok"
    services.resyncer.loop.close()


def test_an_originated_leg_whose_caller_id_is_the_device_rung_names_no_origin():
    from arimonitor.engine import calls as C
    from arimonitor.engine.state import Call, Channel, State

    state = State("asterisk1")
    leg_a = Channel("c2c-r1-a", "PJSIP/1123010-00000001", "Ringing", "1123010", "PJSIP", "1123010", "",
                    10.0, originated=True)
    state.channels[leg_a.id] = leg_a
    call = Call(leg_a.id, "asterisk1", 10.0)
    call.channels = {leg_a.id}
    C.describe(state, call)
    assert (call.origin, call.destination, call.direction) == ("", "1123010", S.DIRECTION_ORIGINATED)
    assert call.line().startswith("originate -> 1123010")   # not "1123010 -> 1123010"


def test_a_snoop_listed_before_the_channel_it_spies_on_joins_its_call():
    """Asterisk lists channels in hash order: the snoop of a recorded call may come first."""
    state, _fx, handlers = new_engine_state()
    channels = json.loads((REST / "channels_during_call.json").read_text())
    target = channels[0]
    snoop = {**target, "id": f"arimon-snoop-{target['id']}", "name": f"Snoop/{target['id']}-00000000",
             "state": "Up", "dialplan": {"context": "default", "exten": "s", "priority": 1}}
    R.reconcile(handlers, _snapshot([snoop, *channels]), "arimonitor", now=10.0)
    assert len(state.calls) == 1, [(c.id, c.destination) for c in state.calls.values()]
    (call,) = state.calls.values()
    assert snoop["id"] in call.channels and call.destination != "s"


def _channel(cid, name, state, context, exten, app, data, number="1003000"):
    return {"id": cid, "name": name, "state": state, "protocol_id": "",
            "caller": {"name": "", "number": number}, "connected": {"name": "", "number": ""},
            "accountcode": "", "dialplan": {"context": context, "exten": exten, "priority": 1,
                                            "app_name": app, "app_data": data},
            "creationtime": "2026-12-01T02:02:57.060+0000", "language": "en"}


def test_a_dialled_leg_adopted_while_it_rings_joins_its_callers_call():
    """The engine was down while a phone's Stasis call went on to Dial(Local/ringanswer@lab):
    REST shows no Dial event and no bridge yet, only the dialplan apps (as Asterisk 22 lists them)."""
    state, fx, handlers = new_engine_state()
    channels = [
        _channel("1796090579.2", "Local/ringanswer@lab-00000000;2", "Ringing", "lab", "ringanswer", "Wait", "2"),
        _channel("1796090577.0", "PJSIP/1003000-00000000", "Ring", "from-endpoints", "5551234",
                 "Dial", "Local/ringanswer@lab,30"),
        _channel("1796090579.1", "Local/ringanswer@lab-00000000;1", "Ringing", "from-endpoints", "5551234",
                 "AppDial", "(Outgoing Line)"),
    ]
    R.reconcile(handlers, _snapshot(channels), "arimonitor", now=10.0)
    assert len(state.calls) == 1, [(c.id, c.origin, c.destination) for c in state.calls.values()]
    (call,) = state.calls.values()
    assert (call.id, call.origin, call.destination, call.answered_by) == \
        ("1796090577.0", "1003000", "5551234", "Local/ringanswer@lab")
    assert [kind for kind, _ in fx.log if kind.startswith("call.")] == ["call.ringing"]


def test_a_c2c_call_that_ends_while_the_engine_is_down_is_filed_as_origin_to_destination():
    """The fault run's " -> 9010001 (ended while arimonitor was down)": the active-call row
    was written when leg A answered (only A: "originate -> A") and never again when leg B
    joined, so a call that ended while no engine watched went to the history as that row."""
    from arimonitor.engine.handlers import Handlers
    from arimonitor.engine.notifier import Notifier
    from arimonitor.engine.outputs import EngineEffects
    from arimonitor.engine.store import Store

    state, _fake, _handlers = new_engine_state()
    store = Store(":memory:")
    handlers = Handlers(state, EngineEffects(store, Notifier(None), state.counters,
                                             lambda _id: None, None, state.server))
    leg_a, leg_b = "c2c-pjsip-a-1795555330", "c2c-pjsip-b-1795555330"
    lines = [line for line in _lines("originate_click_to_call.jsonl") if b"c2c-pjsip" in line]
    talking = next(n for n, line in enumerate(lines)
                   if json.loads(line)["type"] == "ChannelHangupRequest")
    for n, line in enumerate(lines[:talking]):  # both legs up; then the engine is killed
        handlers.apply(line, float(n))
    (row,) = store.load_active(state.server)
    assert (row["id"], set(row["channels"])) == (leg_a, {leg_a, leg_b})
    # the restarted engine finds neither leg in Asterisk: the saved row goes to the history
    assert store.prune_active(state.server, set(), 500.0, "ended while arimonitor was down") == 1
    (ended,) = store.history()
    assert (ended["id"], ended["origin"], ended["destination"]) == (leg_a, "1013010", "1123000")


def test_a_c2c_call_adopted_with_leg_b_listed_first_and_no_saved_row_is_one_call():
    """The fault run under load: "c2c-…-26-b  -> 9020006" and "c2c-…-26-a 9010006 -> s" as two
    rows. Asterisk lists channels in no particular order; leg B adopted before leg A opened a
    call of its own (its leg A was not in the tables yet), and no saved row merged them."""
    state, _fx, handlers = new_engine_state()
    channels = json.loads((REST / "channels_click2call_pjsip.json").read_text())
    leg_a, leg_b = "c2c-pjsip-a-1795555330", "c2c-pjsip-b-1795555330"
    b_first = sorted((c for c in channels if c["id"] in (leg_a, leg_b)), key=lambda c: c["id"] != leg_b)
    assert [c["id"] for c in b_first] == [leg_b, leg_a]
    R.reconcile(handlers, _snapshot(b_first), "arimonitor", now=200.0, persisted=[])
    (call,) = state.calls.values()
    assert call.id == leg_a and call.channels == {leg_a, leg_b}
    assert (call.origin, call.destination) == ("1013010", "1123000")


def test_a_call_found_answered_by_a_resync_is_announced_as_such_with_our_snoop_in_it():
    """The engine was killed as a recorded call connected: the resync after the restart finds
    it up (and our snoop of it, as real Asterisk lists a snoop: in Stasis(arimonitor)). Its
    call.up says a resync found it, so what should have started at the answer (the
    recording) starts now, marked late; a call answered live is not marked."""
    state, fx, handlers = new_engine_state()
    (phone,) = json.loads((REST / "channels_during_call.json").read_text())
    phone = {**phone, "dialplan": {**phone["dialplan"], "app_name": "Dial", "app_data": "PJSIP/1013015,30"}}
    snoop = {**phone, "id": f"arimon-snoop-{phone['id']}", "name": f"Snoop/{phone['id']}-00000000",
             "caller": {"name": "", "number": ""},
             "dialplan": {"context": "default", "exten": "s", "priority": 1, "app_name": "Stasis",
                          "app_data": "arimonitor"}}
    result = R.reconcile(handlers, _snapshot([snoop, phone]), "arimonitor", now=200.0)
    assert result["adopted"] == 1
    (call,) = state.calls.values()
    assert call.channels == {phone["id"], snoop["id"]} and fx.found_up == [call.id]
    assert state.channels[snoop["id"]].in_stasis and fx.continued == []  # ours: never continued
