"""A click-to-call call's state (`FlowCall`) and how it outlives an engine restart.

The flow saves each call's FlowCall (JSON) in the component's SQLite table
(`history.FlowStore`) at every step and drops it at its final. After a restart `restore(flow)`
loads the rows, so events after the restart (the hang-up of a call connected before it) finish
the call with its stored times; `reconcile(flow, channels, bridges)` after each resync compares
the calls with the channels Asterisk still has (legs c2c-<rid>-a|b), rebuilds calls it never
knew, and ends those whose legs went away unseen. Both run in the loop thread and drive the
flow (flow.py) through its own steps.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arimonitor.clicktocall import reasons
from arimonitor.clicktocall.request import parse_channel_id

if TYPE_CHECKING:
    from arimonitor.clicktocall.flow import ClickToCallFlow

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


def restore(flow: ClickToCallFlow) -> int:
    """Load the calls a previous engine left in progress (start, before any event)."""
    if flow.flows is None:
        return 0
    names = {f.name for f in dataclasses.fields(FlowCall)}
    for state in flow.flows.load():
        try:
            call = FlowCall(**{k: v for k, v in state.items() if k in names})
        except TypeError:
            log.warning("c2c: unreadable flow state %r dropped", state.get("request_id"))
            continue
        flow.calls.setdefault(call.request_id, call)
    if flow.calls:
        log.info("c2c: %d call(s) in progress restored from SQLite", len(flow.calls))
    return len(flow.calls)


def reconcile(flow: ClickToCallFlow, channels: Iterable[dict], bridges: Iterable[str] = (),
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
        if call.final or call.request_id in flow._setting_up:
            continue
        found = legs.get(call.request_id, {})
        a, b = found.get("a"), found.get("b")
        if b is not None and b.get("state") == "Up" and not call.connected:
            flow._state(call, "b", "Up", now)
        if a is not None and b is not None:
            continue
        if a is not None and not call.b_dial:
            if not call.a_answered and a.get("state") == "Up" and a.get("stasis_args"):
                _continue(flow, call, a, now)  # answered while we were away
            continue  # leg A still ringing: its events will follow
        if a is not None and now - call.b_dial < grace:
            continue  # leg B is being created: its ChannelCreated may still be on its way
        result["ended"] += 1
        text = "the call ended while the engine was not watching"
        if call.connected:
            # When it ended is unknown: no duration rather than a wrong one.
            flow._finish(call, now, reasons.RESULT_COMPLETED, None, text=text, duration=None,
                         billsec=None)
        else:
            flow._fail(call, reasons.ENDED_UNSEEN, now, text=text)
    return result


def waiting_for_b(flow: ClickToCallFlow, now: float, grace: float) -> bool:
    """A call whose leg B was asked for more than `grace` ago and never connected: the sweep
    (component.py) looks again, since a resync, the only other look, may never come."""
    return any(c.b_dial and not c.connected and not c.final and now - c.b_dial > grace
               for c in flow.calls.values())


def _continue(flow: ClickToCallFlow, call: FlowCall, a: dict, now: float) -> None:
    """Leg A answered and sits in our app, the destination never dialled: do it now."""
    flow._apply_args(call, [str(x) for x in a.get("stasis_args") or ()], a)
    call.a_answered = now
    flow._emit(call, reasons.EV_ORIGIN_ANSWERED, now)
    if call.destination:
        flow._setup(call, a["id"], now)
    else:
        flow._fail(call, reasons.ASTERISK_ERROR, now, text="appArgs carry no destination")


def _adopt(flow: ClickToCallFlow, rid: str, found: dict[str, dict], bridges: set[str],
           now: float) -> None:
    """Legs of a request this flow never knew (its state lost, or placed while away)."""
    a, b = found.get("a"), found.get("b")
    call = flow.calls[rid] = FlowCall(rid, now, flow.default_timeout)
    if a is not None:
        flow._apply_args(call, [str(x) for x in a.get("stasis_args") or ()], a)
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
    flow._save(call)
