"""Calls that phones place: into our Stasis app, or to another phone by the plain dialplan.

The sim's `from-endpoints` context: a number that is a known endpoint (or, as in the lab PBX,
`7` + a known endpoint) is dialled with `Dial(PJSIP/<endpoint>,30)` (seen by a monitor only through subscribeAll, never in Stasis);
any other number goes to `Stasis(<app>)`, as in the lab PBX's extensions.conf.
"""

from __future__ import annotations

from arimonitor.sim import shapes
from arimonitor.sim.calls import Calls
from arimonitor.sim.core import Pbx
from arimonitor.sim.hub import Scope
from arimonitor.sim.shapes import event
from arimonitor.sim.state import BUSY, DEAD, NOANSWER, AriError, Channel

DIAL_TIMEOUT = 30.0


class Dialplan:
    def __init__(self, pbx: Pbx, calls: Calls) -> None:
        self.pbx = pbx
        self.calls = calls

    def _caller_leg(self, source: str, number: str) -> Channel:
        ep = self.pbx.endpoints.get(source)
        if ep is None:
            # a phone may call without registering (identify by IP); it must exist though
            raise AriError(404, f"no endpoint {source}")
        pbx = self.pbx
        ch = Channel(id=pbx.new_channel_id(), name=pbx.channel_name("PJSIP", source), tech="PJSIP",
                     resource=source, state="Ring",
                     protocol_id=f"{pbx.next_index('callid')}-{pbx.rng.randrange(10000, 99999)}@{ep.ip or '127.0.0.1'}",
                     caller=shapes.caller_id(ep.cli, source), context="from-endpoints", exten=number,
                     continues=True)
        pbx.add_channel(ch)
        pbx.varset(ch, "SIPDOMAIN", ep.ip or "127.0.0.1")
        pbx.dialplan(ch, "NoOp", f"Call from {source} to {number}", 1)
        return ch

    def place(self, source: str, number: str, app: str | None = None) -> str:
        """A phone dials `number`; returns the caller channel id."""
        if number in self.pbx.endpoints and app is None:
            return self.dial_endpoint(source, number)
        if app is None and number.startswith("7") and number[1:] in self.pbx.endpoints:
            # the lab PBX's direct call: 7 + endpoint id, a plain Dial (extensions.conf)
            return self.dial_endpoint(source, number[1:], dialled=number)
        return self.into_stasis(source, number, app or self.pbx.default_app)

    def into_stasis(self, source: str, number: str, app: str) -> str:
        pbx = self.pbx
        ch = self._caller_leg(source, number)
        pbx.dialplan(ch, "Stasis", app, 2)
        if pbx.hub.owner(app) is None:
            # no WebSocket owns the app: Stasis() fails at once and the call is lost (NOTES.md)
            pbx.varset(ch, "STASISSTATUS", "FAILED")
            pbx.dialplan(ch, "Hangup", "", 3)
            pbx.ev("ChannelHangupRequest", ch, cause=16, soft=True)
            ch.continues = False
            self.calls.teardown(ch, 16)
            return ch.id
        ch.stasis_app = app
        self.calls._stasis_start(ch)
        pbx.endpoint_device_state(pbx.endpoints[source])
        return ch.id

    def dial_endpoint(self, source: str, target: str, dialled: str | None = None) -> str:
        pbx = self.pbx
        caller = self._caller_leg(source, dialled or target)
        pbx.dialplan(caller, "Dial", f"PJSIP/{target},{int(DIAL_TIMEOUT)}", 2)
        ep = pbx.endpoints[target]
        if not ep.registered or not ep.reachable:
            pbx.varset(caller, "DIALSTATUS", "CHANUNAVAIL")
            self._caller_done(caller, 20)
            return caller.id
        callee = Channel(id=pbx.new_channel_id(), name=pbx.channel_name("PJSIP", target), tech="PJSIP",
                         resource=target, protocol_id=pbx.uuid(), caller=dict(caller.caller),
                         context="from-endpoints", exten="s", dialled_by=caller.id)
        caller.dial_peer = callee.id
        pbx.add_channel(callee)
        pbx.dialplan(callee, "AppDial2", "(Outgoing Line)")
        self._dial_event(caller, callee, "")
        b = ep.behaviour
        if b.mode == BUSY:
            pbx.ev("ChannelHangupRequest", callee, cause=17)
            self._dial_event(caller, callee, "BUSY")
            self._callee_gone(caller, callee, 17, "BUSY")
            return caller.id
        if b.mode != DEAD:
            pbx.set_state(callee, "Ringing")
            self._dial_event(caller, callee, "RINGING")
            pbx.set_state(caller, "Ringing")
            pbx.endpoint_device_state(ep)
        if b.mode not in (NOANSWER, DEAD) and b.answer_after < DIAL_TIMEOUT:
            pbx.later(b.answer_after, self._answered, caller, callee, channel=callee)
        pbx.later(DIAL_TIMEOUT, self._timeout, caller, callee, b.timeout_cause, channel=callee)
        return caller.id

    def _dial_event(self, caller: Channel, callee: Channel, status: str) -> None:
        self.pbx.emit(event("Dial", caller=caller.json(), peer=callee.json(),
                            dialstring=callee.resource, dialstatus=status), Scope(channel=callee))

    def _answered(self, caller: Channel, callee: Channel) -> None:
        pbx = self.pbx
        callee.answered = caller.answered = True
        pbx.set_state(callee, "Up")
        self._dial_event(caller, callee, "ANSWER")
        pbx.set_state(caller, "Up")
        pbx.endpoint_device_state(pbx.endpoints[callee.resource])
        talk = pbx.endpoints[caller.resource].behaviour.talk
        pbx.later(talk, self.calls.remote_hangup, caller.id, 16, channel=caller)

    def _timeout(self, caller: Channel, callee: Channel, cause: int) -> None:
        if callee.answered:
            return
        self._dial_event(caller, callee, "NOANSWER")
        self._callee_gone(caller, callee, cause, "NOANSWER")

    def _callee_gone(self, caller: Channel, callee: Channel, cause: int, status: str) -> None:
        caller.dial_peer = callee.dialled_by = None
        self.calls.teardown(callee, cause)
        self.pbx.varset(caller, "DIALSTATUS", status)
        self._caller_done(caller, cause)

    def _caller_done(self, caller: Channel, cause: int) -> None:
        self.pbx.dialplan(caller, "Hangup", "", 3)
        caller.continues = False
        self.pbx.ev("ChannelHangupRequest", caller, cause=16, soft=True)
        self.calls.teardown(caller, cause)
