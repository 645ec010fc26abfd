"""A click-to-call call's state (`FlowCall`) and how it outlives an engine restart.

The flow saves each call's FlowCall (JSON) in the component's SQLite table
(`history.FlowStore`) at every step and drops it at its final. After a restart the flow's
`restore()` loads the rows (`load_calls`), so events after the restart (the hang-up of a call
connected before it) finish the call with its stored times. `reconcile(flow, channels,
bridges)`, after each resync, compares the calls with the channels Asterisk still has (legs
c2c-<rid>-a|b), rebuilds calls it never knew, and ends those whose legs went away unseen. It
runs in the loop thread and decides what the channels mean; the flow (flow.py) acts through
the public steps of `Flow`, the one interface between the two (no private member of the flow
is used here).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from arimonitor.clicktocall.request import parse_channel_id

if TYPE_CHECKING:
    from arimonitor.clicktocall.history import FlowStore

log = logging.getLogger("arimonitor.clicktocall.flow")

SETUP_GRACE = 5.0  # seconds leg B may take to show up in the engine's state after its create


@dataclass
class FlowCall:
    request_id: str
    created: float
    timeout: float
    client: str = ""
    origin: str = ""
    kind: str = "endpoint"
    destination: str = ""
    record: bool = False
    a_status: str = ""
    a_answered: float = 0.0
    b_dial: float = 0.0
    b_status: str = ""
    connected: float = 0.0
    bridge_id: str = ""
    recording: str | None = None
    origin_ringing: bool = False
    destination_ringing: bool = False
    final: bool = False
    server: str = ""  # the Asterisk leg A came from: every REST request of the call goes there


class Flow(Protocol):
    """What the restart logic drives: the flow's own steps, public (flow.ClickToCallFlow)."""

    calls: dict[str, FlowCall]
    clock: Callable[[], float]

    def setting_up(self, request_id: str) -> bool: ...
    def leg_state(self, call: FlowCall, leg: str, state: str, t: float) -> None: ...
    def origin_answered(self, call: FlowCall, channel: dict, args: list[str], t: float) -> None: ...
    def adopt(self, request_id: str, a: dict | None, t: float) -> FlowCall: ...
    def ended_unseen(self, call: FlowCall, t: float, down_since: float | None = None) -> None: ...
    def save(self, call: FlowCall) -> None: ...


def load_calls(flows: FlowStore) -> list[FlowCall]:
    """The calls a previous engine left in progress; an unreadable row is dropped (logged)."""
    names = {f.name for f in dataclasses.fields(FlowCall)}
    calls = []
    for state in flows.load():
        try:
            calls.append(FlowCall(**{k: v for k, v in state.items() if k in names}))
        except TypeError:
            log.warning("c2c: unreadable flow state %r dropped", state.get("request_id"))
    return calls


def reconcile(flow: Flow, channels: Iterable[dict], bridges: Iterable[str] = (),
              now: float | None = None, grace: float = SETUP_GRACE) -> dict[str, int]:
    """After a resync: match the calls with the legs Asterisk still has (loop thread).

    `channels`: dicts with id, state, name and, for a channel in our Stasis app,
    stasis_args. A call whose legs are all gone ended unseen; one leg of a connected call
    gone means it is over; legs of a call we never knew are adopted."""
    now = flow.clock() if now is None else now
    legs: dict[str, dict[str, dict]] = {}
    for channel in channels:
        parsed = parse_channel_id(channel.get("id", ""))
        if parsed is not None:
            legs.setdefault(parsed[0], {})[parsed[1]] = channel
    bridges = set(bridges)
    result = {"adopted": 0, "ended": 0}
    for rid, found in legs.items():
        if rid not in flow.calls:
            _adopt(flow, rid, found, bridges, now)
            result["adopted"] += 1
    for call in list(flow.calls.values()):
        if call.final or flow.setting_up(call.request_id):
            continue
        found = legs.get(call.request_id, {})
        a, b = found.get("a"), found.get("b")
        if b is not None and b.get("state") == "Up" and not call.connected:
            flow.leg_state(call, "b", "Up", now)
        if a is not None and b is not None:
            continue
        if a is not None and not call.b_dial:
            if not call.a_answered and a.get("state") == "Up" and a.get("stasis_args"):
                _continue(flow, call, a, now)  # answered while we were away
            continue  # leg A still ringing: its events will follow
        if a is not None and now - call.b_dial < grace:
            continue  # leg B is being created: its ChannelCreated may still be on its way
        result["ended"] += 1
        flow.ended_unseen(call, now)
    return result


def waiting_for_b(flow: Flow, now: float, grace: float) -> bool:
    """A call whose leg B was asked for more than `grace` ago and never connected: the sweep
    (component.py) looks again, since a resync, the only other look, may never come."""
    return any(c.b_dial and not c.connected and not c.final and now - c.b_dial > grace
               for c in flow.calls.values())


def _continue(flow: Flow, call: FlowCall, a: dict, now: float) -> None:
    """Leg A answered and sits in our app, the destination never dialled: do it now."""
    flow.origin_answered(call, a, [str(x) for x in a.get("stasis_args") or ()], now)


def _adopt(flow: Flow, rid: str, found: dict[str, dict], bridges: set[str], now: float) -> None:
    """Legs of a request this flow never knew (its state lost, or placed while away)."""
    a, b = found.get("a"), found.get("b")
    call = flow.adopt(rid, a, now)
    if a is None and b is not None and b.get("server"):
        call.server = b["server"]  # only leg B left: the call is on its server
    log.info("c2c %s: adopted from Asterisk's channels (%s)", rid, ", ".join(sorted(found)))
    if b is not None:
        call.bridge_id = f"c2c-{rid}" if f"c2c-{rid}" in bridges else ""
        call.a_answered = call.b_dial = now
        call.destination_ringing = b.get("state") == "Ringing"
        if b.get("state") == "Up":  # talking already: the duration counts from now
            call.connected = now
    elif a is not None and f"c2c-{rid}" in bridges:
        # Set up half-way (bridge, no leg B): end it in the sweep that follows.
        call.bridge_id = f"c2c-{rid}"
        call.a_answered = call.b_dial = now - SETUP_GRACE
    elif a is not None and a.get("state") == "Up" and a.get("stasis_args"):
        _continue(flow, call, a, now)
    elif a is not None:
        call.origin_ringing = a.get("state") == "Ringing"
    flow.save(call)
