"""ARI event -> state. One table from event type to handler; handlers named after the events.

`Handlers.apply(frame, t)` is the hot path: drop byte-identical repeats (real Asterisk sends
some events twice), json.loads, look up the handler, run it, then run the raw-event listeners
components registered (`on_event`). Every handler is idempotent: an event that changes
nothing returns False and is counted as a duplicate. A frame that is not JSON, or lacks a
field a handler needs, is counted and logged with the frame; it never stops the loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from arimonitor.ari.contacts import SOURCE_EVENT, parse_contact_uri, parse_rtt
from arimonitor.engine import calls as C
from arimonitor.engine import states as S
from arimonitor.engine.effects import Effects
from arimonitor.engine.handler_support import (
    IGNORED,
    LogLimiter,
    builtin_claimer,
    excerpt,
)
from arimonitor.engine.state import Bridge, Call, Channel, RemoteIp, State

log = logging.getLogger(__name__)

EventListener = Callable[[dict, float], None]
# (channel, stasis args) -> True if the component drives this channel
Claimer = Callable[[Channel, tuple], bool]

_decode = json.JSONDecoder().decode  # str in: skips loads()'s encoding sniffing on the hot path
_DEDUP_WINDOW = 256  # frames per generation; repeats arrive back to back
class Handlers:
    def __init__(self, state: State, effects: Effects) -> None:
        self.state = state
        self.fx = effects
        self.counters = state.counters
        self.listeners: dict[str, list[EventListener]] = {}
        self.claimers: list[tuple[str, Claimer]] = []
        self._recent: set[bytes] = set()
        self._older: set[bytes] = set()
        self._limiter = LogLimiter()
        self.table: dict[str, Callable[[dict, float], Any]] = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("on_")}
        for name in IGNORED:
            self.table.setdefault(name, self._ignore)

    # ---- extension points ---------------------------------------------------------------

    def on_event(self, event_type: str, fn: EventListener) -> None:
        """Call fn(event, t) after the core handler applied an event of this type."""
        self.listeners.setdefault(event_type, []).append(fn)

    def add_claimer(self, name: str, fn: Claimer) -> None:
        """fn(channel, args) -> True claims a channel entering Stasis (it is not continued)."""
        self.claimers.append((name, fn))

    # ---- the hot path -------------------------------------------------------------------

    def apply(self, frame: bytes, t: float, where: str = "") -> None:
        c = self.counters
        c.received += 1
        if frame in self._recent or frame in self._older:
            c.duplicate += 1
            return
        recent = self._recent
        recent.add(frame)
        if len(recent) > _DEDUP_WINDOW:
            self._older, self._recent = recent, set()
        try:
            event = _decode(frame.decode())
        except (ValueError, UnicodeDecodeError) as exc:
            self._bad(frame, where, f"not JSON: {exc}")
            return
        if type(event) is not dict:
            self._bad(frame, where, "not a JSON object")
            return
        self.apply_event(event, t, frame, where)

    def apply_event(self, event: dict, t: float, frame: bytes | None = None, where: str = "") -> None:
        c = self.counters
        event_type = event.get("type")
        handler = self.table.get(event_type)  # type: ignore[arg-type]
        if handler is None:
            if isinstance(event_type, str):
                c.unknown_type += 1
                if self._limiter.allow():
                    log.info("unknown event type %r ignored%s", event_type, where and f" ({where})")
            else:
                self._bad(frame, where, "no 'type' string", event)
            return
        try:
            changed = handler(event, t)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            self._bad(frame, where, f"{event_type}: missing or bad field {exc!r}", event)
            return
        except S.IllegalTransition as exc:
            c.illegal_transitions += 1
            log.warning("%s ignored: %s", event_type, exc)
            return
        except Exception:  # a handler bug must not stop the loop
            c.handler_error += 1
            log.exception("handler for %s failed on %s", event_type, excerpt(frame, event))
            return
        if changed is False:
            c.duplicate += 1
        else:
            c.applied += 1
        listeners = self.listeners.get(event_type)  # type: ignore[arg-type]
        if listeners:
            for fn in listeners:
                try:
                    fn(event, t)
                except Exception:
                    c.handler_error += 1
                    log.exception("listener %r for %s failed", fn, event_type)

    def _bad(self, frame: bytes | None, where: str, why: str, event: Any = None) -> None:
        self.counters.malformed += 1
        if self._limiter.allow():
            log.warning("malformed frame%s: %s: %s", where and f" at {where}", why,
                        excerpt(frame, event))

    def _ignore(self, event: dict, t: float) -> None:
        return None

    # ---- channels -----------------------------------------------------------------------

    def _channel(self, obj: dict, t: float, created: float | None = None) -> Channel:
        """The channel of an event; adopted (created = its creationtime) if we missed it."""
        ch = self.state.channels.get(obj["id"])
        if ch is None:
            if created is None:
                created = C.parse_ari_time(obj.get("creationtime"), t)
            ch = C.channel_from_ari(obj, t, created)
            call = C.attach_channel(self.state, ch)
            if call is not None:
                if ch.originated:
                    # Asterisk creates the dialled leg before the Dial event that ties it to
                    # its caller; announcing it now would show a phantom second call.
                    self.state.unannounced.add(call.id)
                else:
                    self.fx.call_started(call)
        return ch

    def _announce(self, call: Call | None) -> None:
        """Announce a call held back by `_channel` once it shows it is a call of its own."""
        if call is not None and call.id in self.state.unannounced:
            self.state.unannounced.discard(call.id)
            self.fx.call_started(call)

    def on_ChannelCreated(self, event: dict, t: float) -> bool:
        obj = event["channel"]
        if obj["id"] in self.state.channels:
            return False
        if self.state.touched is not None:
            self.state.touched.add(obj["id"])
        ch = self._channel(obj, t, t)  # arrival order, not Asterisk's clock (NOTES.md)
        if ch.state == S.CHANNEL_UP:
            self._answered(ch, t)
        return True

    def on_ChannelStateChange(self, event: dict, t: float) -> bool:
        obj = event["channel"]
        ch = self._channel(obj, t)
        new = obj["state"]
        if ch.state == new:
            return False
        ch.state = new
        self._announce(self.state.calls.get(ch.call_id))
        if new == S.CHANNEL_UP:
            self._answered(ch, t)
        return True

    def _answered(self, ch: Channel, t: float) -> None:
        call = self.state.calls.get(ch.call_id)
        if call is not None and not ch.snoop:
            self._announce(call)
            if C.answer(call, t):
                self.fx.call_answered(call)

    def on_ChannelHangupRequest(self, event: dict, t: float) -> bool:
        cause = event.get("cause") or 0
        if event.get("soft") or not cause:
            return True
        call = self.state.call_of(event["channel"]["id"])
        if call is None or call.request_cause == cause:
            return False
        call.request_cause = cause
        return True

    def on_ChannelDestroyed(self, event: dict, t: float) -> bool:
        obj = event["channel"]
        if self.state.touched is not None:
            self.state.touched.add(obj["id"])
        ch = self.state.channels.get(obj["id"])
        if ch is None:
            return False
        call = C.detach_channel(self.state, ch, event.get("cause") or 0, event.get("cause_txt", ""))
        if call is not None:
            self._announce(call)
            C.finish_call(self.state, call, t)
            self.counters.calls_ended += 1
            self.fx.call_ended(call)
        return True

    def on_Dial(self, event: dict, t: float) -> bool:
        peer = self._channel(event["peer"], t)
        caller_obj = event.get("caller")
        calls = self.state.calls
        call = calls.get(peer.call_id)
        if caller_obj:
            caller = self._channel(caller_obj, t)
            caller_call = calls.get(caller.call_id)
            if call is not None and caller_call is not None:
                call = C.merge_calls(self.state, caller_call, call)
        status = event.get("dialstatus", "")
        if call is None or not status or call.dial_status == status:
            return False
        call.dial_status = status
        return True

    def on_StasisStart(self, event: dict, t: float) -> bool:
        ch = self._channel(event["channel"], t)
        if ch.in_stasis:
            return False
        ch.in_stasis = True
        ch.stasis_args = tuple(str(a) for a in event.get("args") or ())
        ch.claimed_by = builtin_claimer(ch, ch.stasis_args)
        for name, claim in self.claimers:
            if ch.claimed_by:
                break
            try:
                if claim(ch, ch.stasis_args):
                    ch.claimed_by = name
            except Exception:
                log.exception("claimer %s failed on channel %s", name, ch.id)
        if ch.claimed_by:
            self.counters.claimed += 1
        self._announce(self.state.calls.get(ch.call_id))
        self.fx.stasis_start(ch, event)
        return True

    def on_StasisEnd(self, event: dict, t: float) -> bool:
        ch = self.state.channels.get(event["channel"]["id"])
        if ch is None or not ch.in_stasis:
            return False
        ch.in_stasis = False
        return True

    # ---- bridges ------------------------------------------------------------------------

    def _bridge(self, obj: dict) -> Bridge:
        bridge = self.state.bridges.get(obj["id"])
        if bridge is None:
            bridge = self.state.bridges[obj["id"]] = Bridge(
                obj["id"], obj.get("bridge_type", ""), obj.get("name", ""))
        return bridge

    def on_BridgeCreated(self, event: dict, t: float) -> bool:
        if event["bridge"]["id"] in self.state.bridges:
            return False
        self._bridge(event["bridge"])
        return True

    def on_BridgeDestroyed(self, event: dict, t: float) -> bool:
        bridge = self.state.bridges.pop(event["bridge"]["id"], None)
        if bridge is None:
            return False
        for channel_id in bridge.channels:
            ch = self.state.channels.get(channel_id)
            if ch is not None and ch.bridge_id == bridge.id:
                ch.bridge_id = ""
        return True

    def on_ChannelEnteredBridge(self, event: dict, t: float) -> bool:
        bridge = self._bridge(event["bridge"])
        ch = self._channel(event["channel"], t)
        ch.bridge_id = bridge.id
        members = set(event["bridge"].get("channels") or ()) | {ch.id}
        if members == bridge.channels:
            return False
        bridge.channels = members
        self.join_bridge(bridge)
        return True

    def join_bridge(self, bridge: Bridge) -> None:
        """Channels talking in one bridge are one call (a holding bridge is a waiting room)."""
        if bridge.bridge_type == "holding":
            return
        state = self.state
        call = None
        for channel_id in sorted(bridge.channels):
            other = state.call_of(channel_id)
            if other is None:
                continue
            call = other if call is None else C.merge_calls(state, call, other)

    def on_ChannelLeftBridge(self, event: dict, t: float) -> bool:
        bridge = self.state.bridges.get(event["bridge"]["id"])
        ch = self.state.channels.get(event["channel"]["id"])
        changed = False
        if bridge is not None and ch is not None and ch.id in bridge.channels:
            bridge.channels.discard(ch.id)
            changed = True
        if ch is not None and ch.bridge_id:
            ch.bridge_id = ""
            changed = True
        return changed

    def on_BridgeMerged(self, event: dict, t: float) -> bool:
        gone = self.state.bridges.pop(event["bridge_from"]["id"], None)
        bridge = self._bridge(event["bridge"])
        bridge.channels |= set(event["bridge"].get("channels") or ())
        if gone is not None:
            bridge.channels |= gone.channels
        for channel_id in bridge.channels:
            ch = self.state.channels.get(channel_id)
            if ch is not None:
                ch.bridge_id = bridge.id
        self.join_bridge(bridge)
        return True

    # ---- recordings ---------------------------------------------------------------------

    def _recording(self, event: dict, what: str, rec_state: str) -> bool:
        rec = event["recording"]
        name = rec["name"]
        state = self.state
        call_id = state.recordings.get(name)
        call = state.calls.get(call_id) if call_id else None
        if call is None:
            kind, _, target = (rec.get("target_uri") or "").partition(":")
            if kind == "channel":
                call = state.call_of(target)
            elif kind == "bridge" and target in state.bridges:
                call = next((state.call_of(c) for c in state.bridges[target].channels
                             if state.call_of(c)), None)
        if call is not None and call.recording == name and call.recording_state == rec_state:
            return False
        if call is not None:
            call.recording, call.recording_state = name, rec_state
            state.recordings[name] = call.id
            state.remember_recording(name, call)
        if rec_state != S.RECORDING_RECORDING:
            state.recordings.pop(name, None)
        self.fx.recording(call, what, rec)
        return True

    def on_RecordingStarted(self, event: dict, t: float) -> bool:
        return self._recording(event, "started", S.RECORDING_RECORDING)

    def on_RecordingFinished(self, event: dict, t: float) -> bool:
        return self._recording(event, "finished", S.RECORDING_DONE)

    def on_RecordingFailed(self, event: dict, t: float) -> bool:
        return self._recording(event, "failed", S.RECORDING_FAILED)

    # ---- endpoints ----------------------------------------------------------------------

    def _endpoint_state(self, obj: dict, t: float) -> tuple[Any, bool]:
        ep = self.state.endpoint(obj["technology"], obj["resource"])
        new = obj.get("state") or S.ENDPOINT_UNKNOWN
        if new == ep.state:
            return ep, False
        old, ep.state, ep.last_change = ep.state, new, t
        self.fx.endpoint_state(ep, old)
        return ep, True

    def on_PeerStatusChange(self, event: dict, t: float) -> bool:
        ep, changed = self._endpoint_state(event["endpoint"], t)
        status = (event.get("peer") or {}).get("peer_status", "")
        if status and status != ep.peer_status:
            ep.peer_status = status
            changed = True
        return changed

    def on_EndpointStateChange(self, event: dict, t: float) -> bool:
        return self._endpoint_state(event["endpoint"], t)[1]

    def on_ContactStatusChange(self, event: dict, t: float) -> bool:
        ep, changed = self._endpoint_state(event["endpoint"], t)
        info = event["contact_info"]
        uri = info["uri"]
        status = info.get("contact_status", "")
        rtt = parse_rtt(info.get("roundtrip_usec"))
        if status == ep.contact_status and uri == ep.contact_uri and rtt == ep.roundtrip_usec:
            return changed
        ep.contact_status, ep.roundtrip_usec = status, rtt
        if status != "Removed":
            self.set_address(ep, uri, SOURCE_EVENT, t)
        return True

    def set_address(self, ep: Any, uri: str, source: str, t: float) -> None:
        """Record where an endpoint is reached from, and feed the remote-IP registry."""
        ip, port = parse_contact_uri(uri)
        moved = (uri, ip, port) != (ep.contact_uri, ep.ip, ep.port)
        ep.contact_uri, ep.ip, ep.port = uri, ip, port
        ep.address_source, ep.address_at = source, t
        if moved:
            self.fx.endpoint_address(ep)
        if ip is None:
            return
        rip = self.state.remote_ips.get(ip)
        new_link = False
        if rip is None:
            rip = self.state.remote_ips[ip] = RemoteIp(ip, t, t, source=source)
            new_link = True
        if ep.id not in rip.endpoints:
            rip.endpoints.add(ep.id)
            new_link = True
        rip.last_seen = max(rip.last_seen, t)
        self.fx.remote_ip(rip, new_link)

    def on_ApplicationReplaced(self, event: dict, t: float) -> bool:
        # Another WebSocket took our app: StasisStart would no longer reach us (NOTES.md).
        self.fx.warning("app_replaced", f"ARI application {event.get('application')!r} was "
                        "taken over by another connection")
        return True
