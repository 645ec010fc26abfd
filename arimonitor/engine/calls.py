"""How channels become calls: Local pairs, Dial, bridges; how a call is described and ended.

Rules (each from shared/ari/traces):
- A new channel opens a new call, unless it is the other half of a Local channel pair
  (`Local/x@ctx-00000001;1` / `;2`) or a Snoop channel (`Snoop/<snooped id>-...`): those join
  the call of their partner.
- Dial with a `caller` puts the peer's call into the caller's call.
- Channels in one (non-holding) bridge are one call.
- When two calls merge, the older one is kept (its id is its first channel's id). Two
  channels of one batch share a timestamp; the tie goes to the lower Asterisk unique id,
  compared as numbers (`1700000000.999` before `1700000000.1000`), never as text.
- A call ends when its last non-snoop channel is destroyed.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from arimonitor.engine import states as S
from arimonitor.engine.state import Call, Channel, State


def parse_ari_time(text: str | None, default: float) -> float:
    """ARI's `2026-11-24T21:21:49.846+0000` -> epoch seconds; `default` if absent or bad."""
    if not text:
        return default
    try:
        # fromisoformat (3.11) reads "+0000" and is ~80x faster than strptime
        return _dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return default


def channel_from_ari(obj: dict[str, Any], now: float, created: float | None = None) -> Channel:
    """A Channel record from an ARI Channel object (event or REST). KeyError if no id/name."""
    name = obj["name"]
    tech, _, rest = name.partition("/")
    pair_key = ""
    snoop = tech == "Snoop"
    if tech == "Local" and rest[-2:] in (";1", ";2"):
        # Local/answer@lab-00000001;1 -> pair Local/answer@lab-00000001, shown as Local/answer@lab
        pair_key = name[:-2]
        endpoint = pair_key.rpartition("-")[0] or pair_key
    elif rest:
        # PJSIP/1003000-00000001 -> 1003000 ; keep the whole name when there is no suffix
        head, dash, _tail = rest.rpartition("-")
        endpoint = head if dash and head else rest
    else:
        endpoint = name
    caller = obj.get("caller") or {}
    dialplan = obj.get("dialplan") or {}
    state = obj.get("state", "")
    return Channel(
        id=obj["id"], name=name, state=state, endpoint=endpoint, technology=tech,
        caller=caller.get("number", "") or "", exten=dialplan.get("exten", "") or "",
        created=created if created is not None else now, originated=state == "Down",
        snoop=snoop, pair_key=pair_key)


# Click-to-call legs: c2c-<request>-a and c2c-<request>-b (the flow's ids), or the lab
# trace's c2c-<kind>-a-<n> / -b-<n>. Leg B belongs to leg A's call from its first event.
_C2C_LEG_B = re.compile(r"(c2c-.+)-b(-[0-9]+)?")


def c2c_leg_a(channel_id: str) -> str | None:
    """The A leg's channel id for a click-to-call B leg, else None."""
    match = _C2C_LEG_B.fullmatch(channel_id)
    return f"{match.group(1)}-a{match.group(2) or ''}" if match else None


def attach_channel(state: State, ch: Channel) -> Call | None:
    """Add a new channel to the tables; return its call if a new call was opened."""
    state.channels[ch.id] = ch
    partner_call = None
    leg_a = c2c_leg_a(ch.id)
    if leg_a is not None:
        partner_call = state.call_of(leg_a)
    if ch.pair_key:
        halves = state.local_pairs.setdefault(ch.pair_key, set())
        for other in halves:
            if partner_call is not None:
                break
            partner_call = state.call_of(other)
        halves.add(ch.id)
    elif ch.snoop and partner_call is None:
        # Snoop/<snooped channel id>-<seq>
        snooped = ch.name[len("Snoop/"):].rpartition("-")[0]
        partner_call = state.call_of(snooped)
    if partner_call is not None:
        ch.call_id = partner_call.id
        partner_call.channels.add(ch.id)
        describe(state, partner_call)
        return None
    call = Call(ch.id, state.server, ch.created)
    call.channels.add(ch.id)
    ch.call_id = call.id
    state.calls[call.id] = call
    describe(state, call)
    return call


# Asterisk unique ids: `<epoch>.<sequence>`, optionally after `<systemname>-`.
_UNIQUE_ID = re.compile(r"(?:.*-)?([0-9]+)\.([0-9]+)")


def id_order(channel_id: str) -> tuple:
    """Sort key of a channel id: Asterisk unique ids by (epoch, sequence) as numbers, before any
    other id (ours, like `c2c-…-a`, or a client's), which sort as text among themselves."""
    match = _UNIQUE_ID.fullmatch(channel_id)
    if match:
        return (0, int(match.group(1)), int(match.group(2)), channel_id)
    return (1, 0, 0, channel_id)


def merge_calls(state: State, a: Call, b: Call) -> Call:
    """Make one call of two; the older stays. Returns the survivor."""
    if a is b:
        return a
    keep, gone = (a, b) if (a.created, id_order(a.id)) <= (b.created, id_order(b.id)) else (b, a)
    for channel_id in gone.channels:
        ch = state.channels.get(channel_id)
        if ch is not None:
            ch.call_id = keep.id
    keep.channels |= gone.channels
    if gone.answered is not None and (keep.answered is None or gone.answered < keep.answered):
        keep.answered = gone.answered
        if keep.state == S.CALL_RINGING:
            keep.state = S.call_next(keep.state, S.CALL_UP)
    keep.dial_status = keep.dial_status or gone.dial_status
    if gone.recording and not keep.recording:
        keep.recording, keep.recording_state = gone.recording, gone.recording_state
    for name, call_id in state.recordings.items():
        if call_id == gone.id:
            state.recordings[name] = keep.id
    state.unannounced.discard(gone.id)  # a dialled leg folded in: never a call of its own
    del state.calls[gone.id]
    describe(state, keep)
    return keep


def answer(call: Call, t: float) -> bool:
    """Mark a call answered; False if it already was."""
    if call.state != S.CALL_RINGING:
        return False
    call.state = S.call_next(call.state, S.CALL_UP)
    call.answered = t
    return True


def detach_channel(state: State, ch: Channel, cause: int, cause_txt: str) -> Call | None:
    """Remove a destroyed channel; return its call if that call has no live channel left."""
    state.channels.pop(ch.id, None)
    if ch.pair_key:
        halves = state.local_pairs.get(ch.pair_key)
        if halves is not None:
            halves.discard(ch.id)
            if not halves:
                del state.local_pairs[ch.pair_key]
    if ch.bridge_id:
        bridge = state.bridges.get(ch.bridge_id)
        if bridge is not None:
            bridge.channels.discard(ch.id)
    call = state.calls.get(ch.call_id)
    if call is None:
        return None
    call.channels.discard(ch.id)
    if cause and call.hangup_cause is None:
        call.hangup_cause, call.cause_txt = cause, cause_txt
    for other in call.channels:
        other_ch = state.channels.get(other)
        if other_ch is not None and not other_ch.snoop:
            return None
    return call


def finish_call(state: State, call: Call, t: float, reason: str = S.END_HANGUP) -> Call:
    """End a call: final cause, ENDED, out of the active table. Its channels are dropped."""
    call.state = S.call_next(call.state, S.CALL_ENDED)
    state.unannounced.discard(call.id)
    call.ended = t
    call.end_reason = reason
    if not call.hangup_cause:
        # Cause 0 is what Asterisk gives on originate/dial timeouts: the Dial status says more.
        mapped = S.DIALSTATUS_CAUSE.get(call.dial_status)
        cause = mapped or call.request_cause or (16 if call.answered is not None else 0)
        if reason in (S.END_LOST, S.END_ASTERISK_GONE) and (not mapped or call.dial_status == "ANSWER"):
            # nobody saw how it ended: ANSWER only says it was answered, not that it was
            # cleared normally
            cause = 0
        call.hangup_cause = cause
        call.cause_txt = S.CAUSE_TEXT.get(cause, call.cause_txt or "Unknown")
    for channel_id in list(call.channels):
        ch = state.channels.pop(channel_id, None)
        if ch is not None and ch.pair_key:
            state.local_pairs.pop(ch.pair_key, None)
        if ch is not None and ch.bridge_id in state.bridges:
            state.bridges[ch.bridge_id].channels.discard(channel_id)
    state.calls.pop(call.id, None)
    return call


def rekey_call(state: State, call: Call, new_id: str) -> None:
    """Give an active call another id (one of its channels'): a restored call keeps the id a
    previous run announced it under."""
    old = call.id
    if new_id == old or new_id in state.calls:
        return
    del state.calls[old]
    call.id = new_id
    state.calls[new_id] = call
    for channel_id in call.channels:
        ch = state.channels.get(channel_id)
        if ch is not None:
            ch.call_id = new_id
    for name, call_id in state.recordings.items():
        if call_id == old:
            state.recordings[name] = new_id
    if old in state.unannounced:
        state.unannounced.discard(old)
        state.unannounced.add(new_id)


def restore_call(state: State, call: Call, row: dict[str, Any]) -> None:
    """An adopted call a previous run had announced: its id, times and description back.

    Answered stays the adoption time only if it was answered while no engine saw it."""
    # Its own id, or (click-to-call) leg A's while only leg B survived the restart.
    if row["id"] in call.channels or row["id"] in {c2c_leg_a(c) for c in call.channels}:
        rekey_call(state, call, row["id"])
        describe(state, call)  # the first leg is the one the id names, not the first adopted
    # The saved origin and destination win only if a leg the row knew is gone now. Otherwise
    # the legs at hand say more: a row written before the other leg joined (a click-to-call
    # saved while only leg A rang: "originate -> A") would turn "A -> B" into "A -> A".
    saved_knew_more = bool(set(row.get("channels") or ()) - set(call.channels))
    if row.get("created") is not None:
        call.created = row["created"]  # as first announced (arrival order, not ARI's clock)
    if row.get("answered") is not None:
        if call.state == S.CALL_RINGING:
            call.state = S.call_next(call.state, S.CALL_UP)
        call.answered = row["answered"]
    for name in ("client", "origin", "destination", "direction", "dial_status"):
        if row.get(name) and (saved_knew_more or name not in ("origin", "destination")
                              or not getattr(call, name)):
            setattr(call, name, row[name])
    leg_b = next((state.channels[c] for c in sorted(call.channels)
                  if c2c_leg_a(c) == row["id"] and c in state.channels), None)
    if leg_b is not None and row["id"] not in call.channels:
        # Only leg B survived: the origin is leg A's device (the saved row's origin, or its
        # destination if saved while A alone rang: "originate -> A"), the destination is B.
        call.origin = row.get("origin") or row.get("destination") or call.origin
        call.destination = leg_b.endpoint or call.destination
    call.adopted = call.state == S.CALL_UP and row.get("answered") is None


def describe(state: State, call: Call) -> None:
    """Origin, destination, direction and client from the call's channels.

    The first channel is the origin and the first other leg (not its own Local partner, not
    a snoop) the destination. An originated call with one leg so far has only a destination:
    the device Asterisk is ringing (for click-to-call, leg A until leg B joins).
    """
    members = [state.channels[c] for c in call.channels if c in state.channels]
    if not members:
        return
    members.sort(key=lambda ch: (ch.id != call.id, ch.created, id_order(ch.id)))
    first = members[0]
    others = [ch for ch in members[1:]
              if not ch.snoop and not (first.pair_key and ch.pair_key == first.pair_key)]
    endpoints = state.endpoints
    leg = next((ch for ch in others if not ch.pair_key), others[0] if others else None)
    first_ours = _ours(endpoints, first)
    if leg is not None:
        call.origin = first.endpoint if first_ours or first.originated or not first.caller \
            else first.caller
        leg_ours = _ours(endpoints, leg)
        if leg_ours or (leg.pair_key and (first.originated or not first.exten)):
            call.destination = leg.endpoint
        else:
            # the dialplan sent the call on (a trunk, a Local/ringanswer@lab after Stasis): the
            # operator and Asterisk's CDR know it by the number dialled; who answered is a detail
            call.destination = first.exten or leg.endpoint
        call.answered_by = leg.endpoint if leg.endpoint != call.destination else ""
    elif first.originated:
        # Asterisk places it: a caller ID equal to the device rung (a click-to-call leg A shows
        # its own number) names no origin, so none is claimed ("1123010 -> 1123010" said nothing)
        caller = first.caller if first.caller != first.endpoint else ""
        call.origin, leg_ours = caller, first_ours
        call.destination, first_ours = first.endpoint, False
    else:
        call.origin = first.endpoint if first_ours or not first.caller else first.caller
        call.destination = first.exten
        leg_ours = _ours_id(endpoints, first.exten)
    if first.originated:
        call.direction = S.DIRECTION_ORIGINATED
    elif first_ours and leg_ours:
        call.direction = S.DIRECTION_INTERNAL
    elif first_ours:
        call.direction = S.DIRECTION_OUTBOUND
    elif leg_ours:
        call.direction = S.DIRECTION_INBOUND
    else:
        call.direction = S.DIRECTION_UNKNOWN
    for party in (call.origin, call.destination):
        ep = endpoints.get(party)
        if ep is not None and ep.client:
            call.client = ep.client
            break


def _ours(endpoints: dict, ch: Channel) -> bool:
    return _ours_id(endpoints, ch.endpoint)


def _ours_id(endpoints: dict, endpoint_id: str) -> bool:
    ep = endpoints.get(endpoint_id)
    return ep is not None and ep.in_files
