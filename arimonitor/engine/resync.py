"""Resynchronise with Asterisk: one GET each of /asterisk/info, /endpoints, /channels,
/bridges (never one request per endpoint), plus the contact source, then reconcile.

`fetch_snapshot` runs in a worker thread (it waits on the network); `reconcile` runs in the
loop thread and is pure in-memory work. Events that arrive while the snapshot is in flight are
applied as usual; the channels they created or destroyed and the endpoints they changed are
in `state.touched`, and the snapshot does not undo them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from arimonitor.ari.contacts import SOURCE_UNKNOWN, Contact
from arimonitor.ari.rest import AriRest
from arimonitor.engine import calls as C
from arimonitor.engine import states as S
from arimonitor.engine.handler_support import builtin_claimer
from arimonitor.engine.handlers import Handlers

log = logging.getLogger(__name__)

ContactReader = Callable[[], tuple[list[Contact], str]]  # -> (contacts, source)


@dataclass
class Snapshot:
    started: float                      # time.time() before the first request
    info: dict[str, Any] | None
    endpoints: list[dict[str, Any]]
    channels: list[dict[str, Any]]
    bridges: list[dict[str, Any]]
    contacts: list[Contact] = field(default_factory=list)
    contacts_source: str = SOURCE_UNKNOWN
    contacts_error: str = ""
    fetch_seconds: float = 0.0


def fetch_snapshot(rest: AriRest, contact_reader: ContactReader | None = None) -> Snapshot:
    """The REST half (worker thread). Raises AriError if Asterisk does not answer."""
    started = time.time()
    t0 = time.monotonic()
    info = rest.asterisk_info()
    endpoints, channels, bridges = rest.endpoints(), rest.channels(), rest.bridges()
    snap = Snapshot(started, info, endpoints or [], channels or [], bridges or [])
    if contact_reader is not None:
        try:
            snap.contacts, snap.contacts_source = contact_reader()
        except Exception as exc:  # noqa: BLE001 - addresses are a bonus; the resync stands
            snap.contacts_error = str(exc)
    snap.fetch_seconds = time.monotonic() - t0
    return snap


def asterisk_identity(info: dict[str, Any] | None) -> tuple[str, str]:
    info = info or {}
    return ((info.get("system") or {}).get("entity_id", ""),
            (info.get("status") or {}).get("startup_time", ""))


def end_all_calls(handlers: Handlers, reason: str, now: float) -> int:
    state = handlers.state
    ended = 0
    for call in list(state.calls.values()):
        C.finish_call(state, call, now, reason)
        state.counters.calls_ended += 1
        state.counters.calls_lost += 1
        handlers.fx.call_ended(call)
        ended += 1
    state.channels.clear()
    state.bridges.clear()
    state.local_pairs.clear()
    state.recordings.clear()
    return ended


def reconcile(handlers: Handlers, snap: Snapshot, app: str, now: float | None = None,
              persisted: list[dict[str, Any]] | None = None,
              last_alive: float | None = None) -> dict[str, Any]:
    """Make the state equal to the snapshot; return what changed (loop thread).

    `persisted`: active-call rows a previous run saved (store.load_active); an adopted call
    with a channel in one of them gets that row's id, times and description back.
    `last_alive`: when Asterisk was last seen alive (the link's loss); if it restarted since,
    the calls it took with it end then."""
    t0 = time.monotonic()
    now = time.time() if now is None else now
    state = handlers.state
    fx = handlers.fx
    result: dict[str, Any] = {"adopted": 0, "restored": 0, "adopted_channels": 0, "ended": 0,
                              "dropped_channels": 0,
                              "changed": 0, "addresses": 0, "asterisk_restart": False}
    result["ended"] += _asterisk_step(handlers, snap.info, min(now, last_alive or now), result)
    # Endpoints: state from ARI; what ARI does not list any more is unknown.
    result["changed"] += apply_endpoint_states(handlers, snap.endpoints, now)
    result["changed"] += unknown_unless_listed(handlers, listed_ids(snap.endpoints), now)
    result["addresses"] += _contacts_step(handlers, snap.contacts, now)
    adopted_calls = _channels_step(handlers, snap.channels, app, now, result)
    _bridges_step(handlers, snap.bridges)
    _dial_step(state, snap.channels)
    if persisted:
        result["restored"] = _restore(state, adopted_calls, persisted)
    for call in adopted_calls:
        if call.id in state.calls:  # not merged into another
            result["adopted"] += 1
            fx.call_started(call)
            if call.state == S.CALL_UP:
                fx.call_answered(call, resync=True)
    state.counters.adopted += result["adopted"]
    result["contacts_source"] = snap.contacts_source
    if snap.contacts_error:
        result["contacts_error"] = snap.contacts_error
    result["fetch_seconds"] = round(snap.fetch_seconds, 4)
    result["engine_seconds"] = round(time.monotonic() - t0, 4)
    return result


def _asterisk_step(handlers: Handlers, info: dict[str, Any] | None, last_alive: float,
                   result: dict[str, Any]) -> int:
    """A different startup time than we hold: Asterisk restarted, every call we hold ended
    (at `last_alive`, when it was last seen alive)."""
    state = handlers.state
    entity, startup = asterisk_identity(info)
    ended = 0
    if state.asterisk_startup and startup and (entity, startup) != (state.asterisk_id,
                                                                     state.asterisk_startup):
        log.warning("Asterisk restarted (entity %s, started %s): ending every call we hold",
                    entity, startup)
        ended = end_all_calls(handlers, S.END_ASTERISK_GONE, last_alive)
        result["asterisk_restart"] = True
        state.counters.asterisk_restarts += 1
    if startup:
        state.asterisk_id, state.asterisk_startup = entity, startup
    return ended


# ---- endpoints: also the `endpoints` command's sweep (one GET /endpoints) -------------------

def listed_ids(listed: list[dict[str, Any]]) -> set[str]:
    """The state's endpoint ids of ARI's endpoint objects (State.endpoint's key rule)."""
    return {o.get("resource", "") if o.get("technology", "PJSIP") == "PJSIP"
            else f"{o.get('technology')}/{o.get('resource')}" for o in listed}


def apply_endpoint_states(handlers: Handlers, listed: list[dict[str, Any]], now: float,
                          fetched_at: float | None = None) -> int:
    """ARI's endpoint states into the state; returns how many changed. An endpoint an event
    changed while the snapshot was in flight (`state.touched`), or after `fetched_at`, keeps
    the event's state: the snapshot is older."""
    state, fx = handlers.state, handlers.fx
    changed = 0
    for obj in listed:
        ep = state.endpoint(obj.get("technology", "PJSIP"), obj.get("resource", ""))
        new = obj.get("state") or S.ENDPOINT_UNKNOWN
        if (new != ep.state and (fetched_at is None or ep.last_change <= fetched_at)
                and not state.endpoint_touched(ep.id)):
            old, ep.state, ep.last_change = ep.state, new, now
            fx.endpoint_state(ep, old)
            changed += 1
    return changed


def unknown_unless_listed(handlers: Handlers, listed: set[str], now: float,
                          fetched_at: float | None = None) -> int:
    """What ARI no longer lists is unknown; returns how many changed."""
    fx = handlers.fx
    changed = 0
    for ep in handlers.state.endpoints.values():
        if (ep.id not in listed and ep.state != S.ENDPOINT_UNKNOWN
                and (fetched_at is None or ep.last_change <= fetched_at)
                and not handlers.state.endpoint_touched(ep.id)):
            old, ep.state, ep.last_change = ep.state, S.ENDPOINT_UNKNOWN, now
            fx.endpoint_state(ep, old)
            changed += 1
    return changed


def endpoint_counts(state: Any) -> dict[str, int]:
    counts = {S.ENDPOINT_ONLINE: 0, S.ENDPOINT_OFFLINE: 0, S.ENDPOINT_UNKNOWN: 0}
    for ep in state.endpoints.values():
        counts[ep.state] = counts.get(ep.state, 0) + 1
    return {"online": counts[S.ENDPOINT_ONLINE], "offline": counts[S.ENDPOINT_OFFLINE],
            "unknown": counts[S.ENDPOINT_UNKNOWN], "total": len(state.endpoints)}


def _contacts_step(handlers: Handlers, contacts: list[Contact], now: float) -> int:
    """Addresses from the contact source; returns how many were new or newly known."""
    state = handlers.state
    addresses = 0
    for contact in contacts:
        ep = state.endpoints.get(contact.endpoint)
        if ep is None or state.endpoint_touched(ep.id):
            continue  # unknown, or an event since the snapshot began knows better
        if contact.uri != ep.contact_uri or ep.address_source == SOURCE_UNKNOWN:
            addresses += 1
        ep.contact_status = contact.status
        ep.roundtrip_usec = contact.roundtrip_usec
        handlers.set_address(ep, contact.uri, contact.source, now)
    return addresses


# ---- channels and bridges -------------------------------------------------------------------

def _adoption_order(obj: dict[str, Any]) -> tuple[bool, bool]:
    """Snoops after the channels they spy on; a click-to-call leg B after its leg A, which
    it joins (adopted first, it would open a call of its own: two rows of one call)."""
    return (str(obj.get("name", "")).startswith("Snoop/"),
            C.c2c_leg_a(str(obj.get("id", ""))) is not None)


def _channels_step(handlers: Handlers, listed: list[dict[str, Any]], app: str, now: float,
                   result: dict[str, Any]) -> list[Any]:
    """End what ARI lost, adopt what we missed, refresh the rest; returns the adopted calls."""
    state = handlers.state
    touched = state.touched or set()
    # Asterisk lists channels in no particular order (a hash container): a snoop may come
    # before the channel it spies on, a click-to-call leg B before its leg A. Adopted after
    # them, it joins their call (first, it would open a call of its own: a phantom call, an
    # unrecorded-looking one, or a click-to-call filed as two rows).
    ari = {obj["id"]: obj for obj in sorted(listed, key=_adoption_order)}
    lost = [ch for ch_id, ch in state.channels.items() if ch_id not in ari and ch_id not in touched]
    for ch in lost:
        if ch.id not in state.channels:
            continue  # already gone with its call
        call = C.detach_channel(state, ch, 0, "")
        result["dropped_channels"] += 1
        if call is not None:
            C.finish_call(state, call, now, S.END_LOST)
            state.counters.calls_ended += 1
            state.counters.calls_lost += 1
            handlers.fx.call_ended(call)
            result["ended"] += 1
    adopted_calls = []
    for ch_id, obj in ari.items():
        ch = state.channels.get(ch_id)
        if ch is None:
            if ch_id in touched:
                continue  # destroyed (or created) by an event after the snapshot began
            ch = C.channel_from_ari(obj, now, C.parse_ari_time(obj.get("creationtime"), now))
            call = C.attach_channel(state, ch)
            result["adopted_channels"] += 1
            if call is not None:
                call.adopted = True
                adopted_calls.append(call)
            _adopt_stasis(handlers, ch, obj, app)
        if obj.get("state") and obj["state"] != ch.state:
            ch.state = obj["state"]
        if ch.state == S.CHANNEL_UP and not ch.snoop:
            call = state.calls.get(ch.call_id)
            if call is not None and C.answer(call, now) and not call.adopted:
                handlers.fx.call_answered(call, resync=True)
    return adopted_calls


def _bridges_step(handlers: Handlers, listed: list[dict[str, Any]]) -> None:
    """Bridges as ARI has them; channels in one bridge are one call."""
    state = handlers.state
    touched = state.touched or set()
    seen_bridges = set()
    for obj in listed:
        bridge = handlers._bridge(obj)
        seen_bridges.add(bridge.id)
        bridge.channels = {c for c in obj.get("channels") or () if c in state.channels}
        for channel_id in bridge.channels:
            state.channels[channel_id].bridge_id = bridge.id
        handlers.join_bridge(bridge)
    for bridge_id in [b for b in state.bridges if b not in seen_bridges and b not in touched]:
        del state.bridges[bridge_id]


def _dial_targets(app_data: str) -> set[str]:
    """Dial(PJSIP/1003010&Local/ringanswer@lab,30) -> {"PJSIP/1003010", "Local/ringanswer@lab"}"""
    return {t.strip() for t in app_data.split(",", 1)[0].split("&") if t.strip()}


def _dialled_base(name: str) -> str:
    """PJSIP/1003010-00000008 -> PJSIP/1003010; Local/ringanswer@lab-00000000;1 -> Local/ringanswer@lab"""
    if name.endswith((";1", ";2")):
        name = name[:-2]
    return name.rpartition("-")[0] or name


def _dial_step(state: Any, listed: list[dict[str, Any]]) -> None:
    """An adopted leg that a dialplan Dial is ringing (app AppDial, no bridge yet: REST shows no
    Dial event) joins the call of the channel whose Dial names it, instead of standing as a
    call of its own ("1003000 -> ringanswer", never ended once the bridge merged it)."""
    dialling = [(obj["id"], _dial_targets((obj.get("dialplan") or {}).get("app_data") or ""))
                for obj in listed if (obj.get("dialplan") or {}).get("app_name") == "Dial"]
    if not dialling:
        return
    for obj in listed:
        if not ((obj.get("dialplan") or {}).get("app_name") or "").startswith("AppDial"):
            continue
        leg_call = state.call_of(obj["id"])
        if leg_call is None or not leg_call.adopted:
            continue
        base = _dialled_base(obj.get("name", ""))
        callers = [cid for cid, targets in dialling if base in targets]
        caller_call = state.call_of(callers[0]) if len(callers) == 1 else None
        if caller_call is not None and caller_call is not leg_call:
            C.merge_calls(state, caller_call, leg_call)


def _restore(state: Any, adopted: list[Any], persisted: list[dict[str, Any]]) -> int:
    """Adopted calls whose channels a previous run saved as one call: merged into one (ARI
    may show no bridge, e.g. a dialplan Dial), with that run's id, times and description."""
    by_channel = {ch_id: row for row in persisted for ch_id in row["channels"]}
    groups: dict[str, tuple[dict[str, Any], Any]] = {}
    for call in adopted:
        if call.id not in state.calls:
            continue  # merged into another
        # A click-to-call leg B belongs to its leg A's call, even when A ended while we were
        # down (the saved row may know only A): filed under A, never as a call of its own.
        row = next((by_channel[k] for c in sorted(call.channels, key=C.id_order)
                    for k in (c, C.c2c_leg_a(c)) if k in by_channel), None)
        if row is None:
            continue
        if row["id"] in groups:
            first = groups[row["id"]][1]
            groups[row["id"]] = (row, C.merge_calls(state, first, call))
        else:
            groups[row["id"]] = (row, call)
    for row, call in groups.values():
        C.restore_call(state, call, row)
    return len(groups)


def _adopt_stasis(handlers: Handlers, ch: Any, obj: dict[str, Any], app: str) -> None:
    """A channel found sitting in our Stasis app: decide again whether we drive it."""
    dialplan = obj.get("dialplan") or {}
    if dialplan.get("app_name") != "Stasis":
        return
    words = (dialplan.get("app_data") or "").split(",")
    if words[0] != app:
        return
    ch.in_stasis = True
    ch.stasis_args = tuple(words[1:])
    ch.claimed_by = builtin_claimer(ch, ch.stasis_args)
    for name, claim in handlers.claimers:
        if ch.claimed_by:
            break
        if claim(ch, ch.stasis_args):
            ch.claimed_by = name
    handlers.fx.stasis_start(ch, {"type": "StasisStart", "adopted": True})
