"""The click-to-call call flow inside the engine: origin answers -> dial destination -> bridge.

The consumer originates leg A (`c2c-<request_id>-a`) into our Stasis app with appArgs
`click2call,<request_id>,A,<client>,<endpoint|number>,<destination>,<record 0|1>,<timeout>`.
Every event of a leg is recognised by its channel id, so ringing, busy and no-answer are known
before the channel ever enters Stasis (it enters only when answered). When A answers:

    POST /bridges (mixing, bridgeId c2c-<rid>) ; addChannel A
    POST /channels/create (B: PJSIP/<dest> or the trunk template; originator A) ; addChannel B
    POST /channels/B/dial (caller A, timeout)          -- the order of the recorded trace

B answers -> connected (and the bridge is recorded if the request or the client says so);
either leg ends -> the other is hung up, the bridge destroyed, the final outcome published.
Outcomes go out as engine PUB `c2c.<event>` (final: `c2c.final`) and into SQLite.

Several Asterisk servers: a call belongs to the server its leg A came from (`event["server"]`,
the first configured server when an event has none); the bridge, leg B, the recording and the
hang-ups go to that server's REST (`rest_for(server)`), and every outcome carries `server`.

Collaborators come in through the constructor; REST runs through `run(work, done)` (the
engine's REST worker thread) and never touches this object's state from there. The setup and
the recording go as steps through `run_steps` (the engine's, engine/readiness.py): addChannel and dial of leg
B wait for its StasisStart, the bridge recording for the bridge, so a real Asterisk's late
StasisStart (422/409 when sent too soon) never fails a call.

Engine restarts: each call's state (FlowCall) is saved in the component's SQLite table
(`history.FlowStore`) at every step and dropped at its final; `restore()` and, after each
resync, `reconcile(channels, bridges)` pick the calls up again: flowstate.py decides what a
resync's channels mean and drives the flow through its public steps (`flowstate.Flow`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from arimonitor.clicktocall import flowstate, outcomes, reasons
from arimonitor.clicktocall import verdict as V
from arimonitor.clicktocall.flowstate import FlowCall
from arimonitor.clicktocall.history import FlowStore, OutcomeStore
from arimonitor.clicktocall.request import destination_channel_id, parse_channel_id
from arimonitor.engine.api import Cancelled, RunSteps, SendAtOnce, Step, in_stasis
from arimonitor.engine.api import bridge as need_bridge

log = logging.getLogger(__name__)


EVENT_TYPES = ("ChannelCreated", "ChannelStateChange", "Dial", "StasisStart", "ChannelDestroyed")
_ORIGIN_FAILURES = {V.BUSY: reasons.ORIGIN_BUSY, V.NO_ANSWER: reasons.ORIGIN_NO_ANSWER,
                    V.OFFLINE: reasons.ORIGIN_UNREACHABLE, V.FAILED: reasons.ORIGIN_FAILED}
_DEST_FAILURES = {V.BUSY: reasons.DESTINATION_BUSY, V.NO_ANSWER: reasons.DESTINATION_NO_ANSWER,
                  V.OFFLINE: reasons.DESTINATION_OFFLINE, V.FAILED: reasons.DESTINATION_FAILED}


class Rest(Protocol):
    def post(self, path: str, params: dict | None = None, body: Any = None) -> Any: ...
    def delete(self, path: str, params: dict | None = None) -> Any: ...


Done = Callable[[Any, BaseException | None], None]
Run = Callable[[Callable[[], Any], Done], None]


class _Unreachable(Exception):
    """Asterisk could not allocate leg B: the destination's failure, not Asterisk's."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason, self.text = reason, text


class ClickToCallFlow:
    def __init__(self, rest: Rest, run: Run, publish: Callable[[str, dict], None],
                 store: OutcomeStore | None, *, app: str, trunk_dial: str,
                 default_timeout: float = 30.0, clock: Callable[[], float] = time.time,
                 flows: FlowStore | None = None, run_steps: RunSteps | None = None,
                 rest_for: Callable[[str], Rest] | None = None, default_server: str = "") -> None:
        self.rest = rest  # the default server's (the only one without `rest_for`)
        self.rest_for = rest_for
        self.default_server = default_server
        self.run = run
        self.run_steps: RunSteps = run_steps or SendAtOnce(run)
        self.publish = publish
        self.store = store
        self.app = app
        self.trunk_dial = trunk_dial
        self.default_timeout = default_timeout
        self.clock = clock
        self.flows = flows
        self.calls: dict[str, FlowCall] = {}
        self._setting_up: set[str] = set()  # REST of leg B in flight (memory only)
        self.handlers = {"ChannelCreated": self.on_ChannelCreated,
                         "ChannelStateChange": self.on_ChannelStateChange, "Dial": self.on_Dial,
                         "StasisStart": self.on_StasisStart,
                         "ChannelDestroyed": self.on_ChannelDestroyed}

    def on_event(self, event: dict, t: float) -> None:
        handler = self.handlers.get(event.get("type", ""))
        if handler is not None:
            handler(event, t)

    # ---- events ---------------------------------------------------------------------------------

    def _leg(self, channel: dict | None) -> tuple[FlowCall | None, str]:
        parsed = parse_channel_id((channel or {}).get("id", ""))
        if parsed is None:
            return None, ""
        return self.calls.get(parsed[0]), parsed[1]

    def server_of(self, event: dict) -> str:
        return event.get("server") or self.default_server

    def _rest(self, call: FlowCall) -> Rest:
        """The REST of the call's server."""
        if self.rest_for is None:
            return self.rest
        return self.rest_for(call.server or self.default_server)

    def on_ChannelCreated(self, event: dict, t: float) -> None:
        parsed = parse_channel_id(event["channel"]["id"])
        if parsed is None or parsed[1] != "a" or parsed[0] in self.calls:
            return
        call = self.calls[parsed[0]] = FlowCall(parsed[0], t, self.default_timeout,
                                                origin=endpoint_of(event["channel"]),
                                                server=self.server_of(event))
        self.save(call)
        self._emit(call, reasons.EV_ACCEPTED, t)

    def on_ChannelStateChange(self, event: dict, t: float) -> None:
        call, leg = self._leg(event.get("channel"))
        if call is not None:
            self.leg_state(call, leg, event["channel"].get("state", ""), t)

    def on_Dial(self, event: dict, t: float) -> None:
        call, leg = self._leg(event.get("peer"))
        if call is None:
            return
        status = event.get("dialstatus") or ""
        if status:
            if leg == "a":
                call.a_status = status
            else:
                call.b_status = status
            self.save(call)
        if status == "RINGING":
            self.leg_state(call, leg, "Ringing", t)
        elif status == "ANSWER" and leg == "b":
            self.leg_state(call, leg, "Up", t)

    def leg_state(self, call: FlowCall, leg: str, state: str, t: float) -> None:
        """A leg rang or answered (an event, or a resync that found it so: flowstate.py)."""
        if call.final:
            return
        if state == "Ringing" and leg == "a" and not call.origin_ringing:
            call.origin_ringing = True
            self.save(call)
            self._emit(call, reasons.EV_ORIGIN_RINGING, t)
        elif state == "Ringing" and leg == "b" and not call.destination_ringing:
            call.destination_ringing = True
            self.save(call)
            self._emit(call, reasons.EV_DESTINATION_RINGING, t)
        elif state == "Up" and leg == "b" and not call.connected:
            call.connected = t
            if call.record and call.bridge_id:
                self._record(call, t)
            self.save(call)
            self._emit(call, reasons.EV_CONNECTED, t)

    def on_StasisStart(self, event: dict, t: float) -> None:
        args = [str(a) for a in event.get("args") or ()]
        if len(args) < 3 or args[0] != "click2call" or args[2] != "A":
            return  # leg B enters Stasis as it is created: nothing to do
        channel = event["channel"]
        call = self.calls.get(args[1])
        if call is None:  # engine started after the originate: adopt it
            call = self.calls[args[1]] = FlowCall(args[1], t, self.default_timeout)
        if call.a_answered or call.final:
            return
        call.server = self.server_of(event)  # leg A sits in this server's app
        self.origin_answered(call, channel, args, t)

    def origin_answered(self, call: FlowCall, channel: dict, args: list[str], t: float) -> None:
        """Leg A answered and sits in our app with `args`: dial the destination. Also after a
        restart, for an origin that answered while the engine was away (flowstate.py)."""
        self._apply_args(call, args, channel)
        call.a_answered = t
        self._emit(call, reasons.EV_ORIGIN_ANSWERED, t)
        if not call.destination:
            self._fail(call, reasons.ASTERISK_ERROR, t, text="appArgs carry no destination")
            return
        self._setup(call, channel["id"], t)

    def _apply_args(self, call: FlowCall, args: list[str], channel: dict) -> None:
        call.origin = call.origin or endpoint_of(channel)
        if len(args) >= 8:
            call.client, call.kind, call.destination = args[3], args[4], args[5]
            call.record = args[6] == "1"
            call.timeout = _float(args[7], self.default_timeout)

    def on_ChannelDestroyed(self, event: dict, t: float) -> None:
        call, leg = self._leg(event.get("channel"))
        if call is None or call.final:
            return
        cause, cause_txt = int(event.get("cause") or 0), event.get("cause_txt") or ""
        if call.connected:
            # Talk time counts from both legs connected, not from the origin's answer.
            talk = round(max(0.0, t - call.connected), 3)
            self._finish(call, t, reasons.RESULT_COMPLETED, None, cause=cause, cause_txt=cause_txt,
                         duration=talk, billsec=talk)
        elif leg == "a" and call.a_answered:
            self._fail(call, reasons.ORIGIN_HUNG_UP, t, cause=cause, cause_txt=cause_txt)
        elif leg == "a":
            which = V.leg_verdict(call.a_status, cause, t - call.created, call.timeout)
            self._fail(call, _ORIGIN_FAILURES[which], t, **V.leg_cause(which, cause, cause_txt))
        else:
            # The destination never answered: its own cause, however long the origin was up.
            started = call.b_dial or call.a_answered or call.created
            which = V.leg_verdict(call.b_status, cause, t - started, call.timeout)
            self._fail(call, _DEST_FAILURES[which], t, **V.leg_cause(which, cause, cause_txt))

    # ---- REST steps (in the worker thread; results come back through `done`) ------------------

    def dial_string(self, call: FlowCall) -> str:
        if call.kind == "number":
            return self.trunk_dial.format(number=call.destination)
        return f"PJSIP/{call.destination}"

    def _setup(self, call: FlowCall, a_id: str, t: float) -> None:
        rid, rest = call.request_id, self._rest(call)
        bridge_id, b_id = f"c2c-{rid}", destination_channel_id(rid)
        endpoint, timeout = self.dial_string(call), str(int(call.timeout))
        call.bridge_id = bridge_id
        call.b_dial = t
        self.save(call)
        if call.kind == "number":
            unreachable = f"trunk unavailable ({endpoint})"
            allocation_failed = reasons.DESTINATION_UNREACHABLE
        else:  # an endpoint Asterisk cannot allocate a channel for: not registered
            unreachable = f"{call.destination} is not registered"
            allocation_failed = reasons.DESTINATION_OFFLINE

        def create_b() -> None:
            try:
                rest.post("/channels/create", params={
                    "endpoint": endpoint, "app": self.app, "appArgs": f"click2call,{rid},B",
                    "channelId": b_id, "originator": a_id})
            except Exception as exc:
                if getattr(exc, "status", 0) == 500 and "allocation failed" in str(exc).lower():
                    raise _Unreachable(allocation_failed,
                                       f"{reasons.describe(allocation_failed)}: {unreachable}") from None
                raise

        # Leg B is in Stasis only at its StasisStart, some time after the create's 200:
        # addChannel/dial before it answer 422/409 (readiness.py; issue 16).
        steps = [
            Step(f"create bridge {bridge_id}", lambda: rest.post(
                "/bridges", params={"type": "mixing", "bridgeId": bridge_id, "name": bridge_id}),
                gives=(need_bridge(bridge_id),)),
            Step(f"addChannel {a_id}", lambda: rest.post(
                f"/bridges/{bridge_id}/addChannel", params={"channel": a_id}),
                needs=(need_bridge(bridge_id), in_stasis(a_id))),
            Step(f"create {b_id}", create_b),
            Step(f"addChannel {b_id}", lambda: rest.post(
                f"/bridges/{bridge_id}/addChannel", params={"channel": b_id}),
                needs=(need_bridge(bridge_id), in_stasis(b_id))),
            Step(f"dial {b_id}", lambda: rest.post(
                f"/channels/{b_id}/dial", params={"caller": a_id, "timeout": timeout}),
                needs=(in_stasis(b_id),)),
        ]
        self._setting_up.add(rid)

        def done(error: BaseException | None) -> None:
            self._setting_up.discard(rid)
            if call.final or isinstance(error, Cancelled):
                return
            if isinstance(error, _Unreachable):
                self._fail(call, error.reason, self.clock(), text=error.text)
            elif error is not None:
                log.warning("c2c %s: setting up the destination failed: %s", rid, error)
                self._fail(call, reasons.ASTERISK_ERROR, self.clock(), text=str(error)[:200])

        self.run_steps(f"c2c {rid}", steps, done, lambda: not call.final)

    def _record(self, call: FlowCall, t: float) -> None:
        day = time.strftime("%Y-%m-%d", time.localtime(t))
        # client/date/id: the transcoder reads its tags from this shape of name.
        name = f"{call.client or 'c2c'}/{day}/c2c-{call.request_id}"
        call.recording = name
        rid, bridge_id, rest = call.request_id, call.bridge_id, self._rest(call)
        params = {"name": name, "format": "wav", "ifExists": "overwrite"}

        def done(error: BaseException | None) -> None:
            if error is not None and not isinstance(error, Cancelled):
                log.warning("c2c %s: recording did not start: %s", rid, error)
                call.recording = None
                if not call.final:
                    self.save(call)

        step = Step(f"record bridge {bridge_id}",
                    lambda: rest.post(f"/bridges/{bridge_id}/record", params=params),
                    needs=(need_bridge(bridge_id),))
        self.run_steps(f"c2c {rid}", [step], done, lambda: not call.final)

    def _hang_up(self, call: FlowCall) -> None:
        rest, rid, bridge = self._rest(call), call.request_id, call.bridge_id

        def work() -> None:
            for channel in (f"c2c-{rid}-a", f"c2c-{rid}-b"):
                _quiet(lambda c=channel: rest.delete(f"/channels/{c}", params={"reason": "normal"}))
            if bridge:
                _quiet(lambda: rest.delete(f"/bridges/{bridge}"))

        self.run(work, lambda _r, _e: None)

    # ---- outcomes -------------------------------------------------------------------------------

    def _fail(self, call: FlowCall, reason: str, t: float, **fields: Any) -> None:
        # Never connected: no talk time, however long the origin leg was up while B rang.
        fields.setdefault("duration", 0.0)
        fields.setdefault("billsec", 0.0)
        self._finish(call, t, reasons.RESULT_FAILED, reason, **fields)

    def _finish(self, call: FlowCall, t: float, result: str, reason: str | None, **fields: Any) -> None:
        call.final = True
        self._hang_up(call)
        self._emit(call, reasons.EV_FINAL, t, result=result, reason=reason, recording=call.recording,
                   **fields)
        self.calls.pop(call.request_id, None)
        if self.flows is not None:
            try:
                self.flows.delete(call.request_id)
            except Exception:
                log.exception("c2c %s: dropping the flow state failed", call.request_id)

    # ---- engine restarts (flowstate.py drives these after a resync) ---------------------------

    def save(self, call: FlowCall) -> None:
        """Keep the call's state in SQLite, so an engine restart can finish it."""
        if self.flows is None or call.final:
            return
        try:
            self.flows.save(call.request_id, dataclasses.asdict(call), self.clock())
        except Exception:  # the call goes on; only a restart would lose it
            log.exception("c2c %s: saving the flow state failed", call.request_id)

    def restore(self) -> int:
        """Load the calls a previous engine left in progress (start, before any event)."""
        if self.flows is None:
            return 0
        for call in flowstate.load_calls(self.flows):
            self.calls.setdefault(call.request_id, call)
        if self.calls:
            log.info("c2c: %d call(s) in progress restored from SQLite", len(self.calls))
        return len(self.calls)

    def reconcile(self, channels: Iterable[dict], bridges: Iterable[str] = (),
                  now: float | None = None, grace: float = flowstate.SETUP_GRACE) -> dict[str, int]:
        """After a resync: match the calls with the legs Asterisk still has (flowstate.py)."""
        return flowstate.reconcile(self, channels, bridges, now, grace)

    def setting_up(self, request_id: str) -> bool:
        """Leg B's REST is in flight: its channel may not be in Asterisk's list yet."""
        return request_id in self._setting_up

    def adopt(self, request_id: str, a: dict | None, t: float) -> FlowCall:
        """A call this flow never knew, found in Asterisk's channels (`a`: its leg A, if any)."""
        leg = a or {}
        call = self.calls[request_id] = FlowCall(request_id, t, self.default_timeout,
                                                 server=self.server_of(leg))
        if a is not None:
            self._apply_args(call, [str(x) for x in a.get("stasis_args") or ()], a)
        return call

    def ended_unseen(self, call: FlowCall, t: float, down_since: float | None = None) -> None:
        """Its legs went away while the engine was not watching. `down_since`: it was in flight
        when arimonitor stopped (whiledown.py), last alive then: `ended_while_down`, with the
        talk time up to that mark."""
        if down_since is not None:
            text = reasons.FAILURE_TEXT[reasons.ENDED_WHILE_DOWN]
            ended = min(t, down_since)
            if call.connected:
                talk = round(max(0.0, ended - call.connected), 3)
                self._finish(call, ended, reasons.RESULT_COMPLETED, reasons.ENDED_WHILE_DOWN,
                             text=text, duration=talk, billsec=talk)
            else:
                self._fail(call, reasons.ENDED_WHILE_DOWN, ended, text=text)
            return
        text = "the call ended while the engine was not watching"
        if call.connected:
            # When it ended is unknown: no duration rather than a wrong one.
            self._finish(call, t, reasons.RESULT_COMPLETED, None, text=text, duration=None,
                         billsec=None)
        else:
            self._fail(call, reasons.ENDED_UNSEEN, t, text=text)

    def _emit(self, call: FlowCall, event: str, t: float, **fields: Any) -> None:
        extra = {"origin": call.origin or None, "destination": call.destination or None,
                 "server": call.server or None, **fields}
        reason = extra.pop("reason", None)
        result = extra.pop("result", None)
        body = outcomes.outcome(call.request_id, call.client, event, result=result, reason=reason,
                                **extra)
        body["t"] = t
        if self.store is not None:
            try:
                self.store.record(body)
            except Exception:
                log.exception("c2c %s: storing %s failed", call.request_id, event)
        self.publish(f"c2c.{event}", body)
        if event == reasons.EV_FINAL:
            log.info("c2c %s final: %s %s", call.request_id, result, reason or "")


def endpoint_of(channel: dict | None) -> str:
    """"1013010" of a channel named PJSIP/1013010-0000002a (the origin); "" if unnamed."""
    name = (channel or {}).get("name") or ""
    _tech, _, rest = name.partition("/")
    if not rest:
        return ""
    return rest.rsplit("-", 1)[0] if "-" in rest else rest


def _float(text: str, default: float) -> float:
    try:
        return float(text)
    except ValueError:
        return default


def _quiet(fn: Callable[[], Any]) -> None:
    """Hang-up of a leg Asterisk already destroyed answers 404: expected, not an error."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - best effort cleanup, logged
        if getattr(exc, "status", 0) != 404:
            log.debug("c2c cleanup: %s", exc)
