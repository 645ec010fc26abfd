"""The channel and call side of the event table: channels, dials, Stasis, bridges, recordings.

A base of `Handlers` (handlers.py): its `on_<AriEvent>` methods land in the one event table
`Handlers` builds, which stays the only dispatch source. Each handler returns False when the
event changes nothing (counted as a duplicate).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from arimonitor.engine import calls as C
from arimonitor.engine import states as S
from arimonitor.engine.effects import Effects
from arimonitor.engine.handler_support import builtin_claimer
from arimonitor.engine.state import Bridge, Call, Channel, Counters, State

log = logging.getLogger("arimonitor.engine.handlers")


class CallHandlers:
    """Set by `Handlers.__init__`: state, fx, counters, claimers."""

    state: State
    fx: Effects
    counters: Counters
    claimers: list[tuple[str, Callable[[Channel, tuple], bool]]]

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
                # Held back until it shows what it is: Asterisk creates a dialled leg before the
                # Dial event that ties it to its caller (announcing it now would show a phantom
                # second call), and a phone's call is only "to 71013015" until the Dial says
                # it rings 1013015 (or until it enters Stasis, rings, answers or ends): the
                # calls log then tells the same story as the history.
                self.state.unannounced.add(call.id)
            else:
                self._joined(self.state.calls.get(ch.call_id))
        return ch

    def _joined(self, call: Call | None) -> None:
        """A leg joined a call already announced: its saved active row learns of it."""
        if call is not None and call.id not in self.state.unannounced:
            self.fx.call_joined(call)

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
                merged = call is not caller_call
                call = C.merge_calls(self.state, caller_call, call)
                self._announce(call)
                if merged:
                    self._joined(call)
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
        for channel_id in sorted(bridge.channels, key=C.id_order):
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
