"""Channels: originate, create + dial, answer, hangup, inbound and dialplan calls.

Event order in each flow follows the captures in ../shared/ari/traces (see the comments).
Local channels run the `lab` dialplan of ../shared/ari/asterisk-conf/extensions.conf (lab.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from arimonitor.sim import shapes
from arimonitor.sim.core import Pbx
from arimonitor.sim.hub import Scope
from arimonitor.sim.lab import LAB, Lab
from arimonitor.sim.media import Media
from arimonitor.sim.shapes import event
from arimonitor.sim.state import BUSY, DEAD, NOANSWER, AriError, Channel

ALLOCATION_FAILED = AriError(500, "Allocation failed", {"error": "Allocation failed"})


def _timeout(raw: Any, default: float = 30.0) -> float:
    # Asterisk accepts timeout=abc (NOTES.md); -1 means no timeout
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return default
    return 365 * 86400.0 if value < 0 else float(value)


class Calls:
    def __init__(self, pbx: Pbx, media: Media) -> None:
        self.pbx = pbx
        self.media = media
        self.lab = Lab(pbx, self)  # Local channels: the lab dialplan (lab.py)
        media.on_channel_gone = self.hangup_snoops
        # channel id -> seconds its StasisStart waits (the timing fault; faults.StasisDelay)
        self.stasis_delay: Callable[[str], float] = lambda channel_id: 0.0

    # ---- lookups -----------------------------------------------------------------------
    def get(self, channel_id: str) -> Channel:
        ch = self.pbx.channels.get(channel_id)
        if ch is None:
            raise AriError(404, "Channel not found")
        return ch

    def stasis_channel(self, channel_id: str) -> Channel:
        ch = self.get(channel_id)
        if ch.app is None:
            raise AriError(409, "Channel not in Stasis application")
        return ch

    def _parse_endpoint(self, endpoint: str) -> tuple[str, str]:
        if "/" not in endpoint:
            raise AriError(400, "Invalid endpoint specified")
        tech, resource = endpoint.split("/", 1)
        tech = {"pjsip": "PJSIP", "local": "Local"}.get(tech.lower(), tech)
        if tech == "PJSIP":
            ep = self.pbx.endpoints.get(resource)
            if ep is None or not ep.registered or not ep.reachable:
                raise ALLOCATION_FAILED  # and no event at all (NOTES.md)
        elif tech == "Local":
            exten, _, context = resource.partition("@")
            if context != "lab" or exten not in LAB:
                raise ALLOCATION_FAILED  # chan_local refuses an extension that does not exist
        else:
            raise ALLOCATION_FAILED
        return tech, resource

    def _check_ids(self, *ids: str | None) -> None:
        for cid in ids:
            if cid and cid in self.pbx.channels:
                raise AriError(409, "Channel with given unique ID already exists")

    # ---- originate / create ------------------------------------------------------------
    def originate(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._start(params, create=False)

    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._start(params, create=True)

    def _start(self, params: dict[str, Any], create: bool) -> dict[str, Any]:
        endpoint = params.get("endpoint")
        if not endpoint:
            raise AriError(400, "Endpoint must be specified")
        app = params.get("app")
        if not app and (create or not params.get("extension")):
            raise AriError(400, "Application or extension must be specified")
        tech, resource = self._parse_endpoint(str(endpoint))
        cid = params.get("channelId") or self.pbx.new_channel_id()
        other = params.get("otherChannelId") or (f"{cid};2" if tech == "Local" else None)
        self._check_ids(cid, other if tech == "Local" else None)
        args = [a for a in str(params.get("appArgs") or "").split(",")] if params.get("appArgs") else []
        caller = shapes.parse_caller_id(str(params["callerId"])) if params.get("callerId") else None
        timeout = _timeout(params.get("timeout"))
        one = self._new_leg(tech, resource, cid, caller)
        one.stasis_app, one.args, one.dial_timeout = app or "", args, timeout
        for name, value in (params.get("variables") or {}).items():
            one.variables[str(name)] = str(value)
        two = None
        if tech == "Local":
            exten, _, context = resource.partition("@")
            two = Channel(id=other, name=one.name[:-2] + ";2", tech="Local", state="Ring",
                          context=context, exten=exten, half=2, program=exten, peer_id=one.id)
            one.peer_id, one.half = two.id, 1
            self.pbx.add_channel(two)
        stasis_data = ",".join([app or ""] + args)
        if create:
            # /channels/create: straight into Stasis, still Down (failures trace)
            self.pbx.dialplan(one, "Stasis", stasis_data)
            self._stasis_start(one)
            return one.json()
        self.pbx.dialplan(one, "AppDial2", "(Outgoing Line)")
        snapshot = one.json()
        one.variables["__dial_mode"] = "originate"
        self._dial(one, two)
        return snapshot

    def _new_leg(self, tech: str, resource: str, cid: str, caller: dict | None) -> Channel:
        pbx = self.pbx
        if tech == "PJSIP":
            ep = pbx.endpoints[resource]
            ch = Channel(id=cid, name=pbx.channel_name("PJSIP", resource), tech="PJSIP",
                         resource=resource, protocol_id=pbx.uuid(), context="from-endpoints",
                         caller=caller or shapes.caller_id(ep.cli, resource))
        else:
            exten, _, context = resource.partition("@")
            ch = Channel(id=cid, name=pbx.channel_name("Local", resource) + ";1", tech="Local",
                         context=context, exten=exten, caller=caller or shapes.caller_id())
        return pbx.add_channel(ch)

    def dial(self, channel_id: str, params: dict[str, Any]) -> None:
        """POST /channels/{id}/dial on a channel made by /channels/create."""
        ch = self.stasis_channel(channel_id)
        if ch.state != "Down" or ch.variables.get("__dial_mode"):
            raise AriError(409, "Channel is not in the 'Down' state")
        ch.variables["__dial_mode"] = "dial"
        ch.dial_timeout = _timeout(params.get("timeout"), 0) or 365 * 86400.0
        two = self.pbx.channels.get(ch.peer_id) if ch.peer_id else None
        self._dial(ch, two)

    # ---- dialling ----------------------------------------------------------------------
    def _dial_event(self, ch: Channel, status: str, caller: Channel | None = None) -> None:
        mode = ch.variables.get("__dial_mode")
        first = "__dialed" not in ch.variables
        ch.variables["__dialed"] = "1"
        target = ch.resource if ch.tech == "PJSIP" else f"{ch.exten}@{ch.context}"
        fields: dict[str, Any] = {}
        if caller is not None:
            fields["caller"] = caller.json()
        fields["peer"] = ch.json()
        fields["dialstring"] = target if (mode != "dial" or first) else ""
        fields["dialstatus"] = status
        self.pbx.emit(event("Dial", **fields), Scope(channel=ch))

    def _dial(self, one: Channel, two: Channel | None) -> None:
        if two is not None:
            self.lab.run(one, two)
            return
        ep = self.pbx.endpoints[one.resource]
        b = ep.behaviour
        self._dial_event(one, "")
        mode = one.variables["__dial_mode"]
        if b.mode == BUSY:
            # 486: originate gets Dial BUSY, create+dial does not (failures trace)
            self.pbx.ev("ChannelHangupRequest", one, cause=17)
            if mode == "originate":
                self._dial_event(one, "BUSY")
            self.teardown(one, 17)
            return
        if b.mode != DEAD:
            self.pbx.set_state(one, "Ringing")
            self._dial_event(one, "RINGING")
            self.pbx.endpoint_device_state(ep)
        if b.mode not in (NOANSWER, DEAD) and b.answer_after < one.dial_timeout:
            self.pbx.later(b.answer_after, self._answered, one, channel=one)
        self.pbx.later(one.dial_timeout, self._ring_timeout, one, b.timeout_cause, channel=one)

    def _answered(self, ch: Channel) -> None:
        ch.answered = True
        self.pbx.set_state(ch, "Up")
        self._dial_event(ch, "ANSWER")
        if ch.variables.get("__dial_mode") == "originate":
            self._stasis_start(ch)
        if ch.tech == "PJSIP":
            self.pbx.endpoint_device_state(self.pbx.endpoints[ch.resource])

    def _ring_timeout(self, ch: Channel, cause: int) -> None:
        if ch.answered:
            return
        if ch.app is not None:
            self.pbx.ev("ChannelHangupRequest", ch, cause=cause)
        self.teardown(ch, cause)

    def _stasis_start(self, ch: Channel) -> None:
        delay = self.stasis_delay(ch.id)
        if delay > 0:
            # Not in Stasis until then: record 409, addChannel 422, dial 409 (as Asterisk).
            self.pbx.later(delay, self._enter_stasis, ch, channel=ch, scaled=False)
            return
        self._enter_stasis(ch)

    def _enter_stasis(self, ch: Channel) -> None:
        app = ch.stasis_app or self.pbx.default_app
        ch.app_name, ch.app_data = "Stasis", ",".join([app] + ch.args)
        self.pbx.varset(ch, "STASISSTATUS", "")
        ch.app = app
        self.pbx.emit(event("StasisStart", args=list(ch.args), channel=ch.json()),
                      Scope(channel=ch, app_only=app))

    def stasis_end(self, ch: Channel) -> None:
        if ch.app is None:
            return
        self.media.leave_bridge(ch)
        app, ch.app = ch.app, None
        self.pbx.emit(event("StasisEnd", channel=ch.json()), Scope(channel=ch, app_only=app))
        self.pbx.varset(ch, "STASISSTATUS", "SUCCESS")

    # ---- hangup ------------------------------------------------------------------------
    def delete(self, channel_id: str, reason: str | None, reason_code: str | None = None) -> None:
        """DELETE /channels/{id}: ARI's soft hangup, cause 32 on the request."""
        ch = self.get(channel_id)
        if reason_code:
            try:
                cause = int(reason_code)
            except ValueError:
                raise AriError(400, "Invalid reason_code specified") from None
        else:
            cause = shapes.HANGUP_REASONS.get(reason or "normal")
            if cause is None:
                raise AriError(400, "Invalid reason for hangup specified")
        self.pbx.ev("ChannelHangupRequest", ch, cause=32, soft=True)
        self.teardown(ch, cause)

    def remote_hangup(self, channel_id: str, cause: int = 16) -> None:
        """The phone hangs up (control API)."""
        ch = self.get(channel_id)
        self.pbx.ev("ChannelHangupRequest", ch, cause=cause)
        self.teardown(ch, cause)

    def teardown(self, ch: Channel, cause: int) -> None:
        if ch.gone:
            return
        self.stasis_end(ch)
        self.media.leave_bridge(ch)
        if ch.continues:
            # inbound: the dialplan goes on to Hangup() after Stasis (from-endpoints)
            self.pbx.ev("ChannelHangupRequest", ch, cause=16, soft=True)
        peer = self.pbx.channels.get(ch.peer_id or "") if ch.tech == "Local" else None
        other = self.pbx.channels.get(ch.dial_peer or ch.dialled_by or "")
        if peer is not None:
            self.pbx.ev("ChannelHangupRequest", peer, cause=16)
            self._destroy(ch, cause)
            self.stasis_end(peer)
            self.pbx.ev("ChannelHangupRequest", peer, cause=16, soft=True)
            self._destroy(peer, 16 if peer.answered else cause)
            return
        self._destroy(ch, cause)
        if other is not None:
            self.pbx.ev("ChannelHangupRequest", other, cause=cause)
            self.teardown(other, cause)

    def _destroy(self, ch: Channel, cause: int) -> None:
        if ch.gone:
            return
        self.media.leave_bridge(ch)
        ch.gone = True
        self.pbx.ev("ChannelDestroyed", ch, cause=cause,
                    cause_txt=shapes.CAUSE_TEXT.get(cause, "Unknown"))
        self.pbx.forget_channel(ch)  # EndpointStateChange comes after ChannelDestroyed (trace)
        self.media.channel_gone(ch)

    def hangup_snoops(self, ch: Channel) -> None:
        for snoop in [c for c in self.pbx.channels.values() if c.tech == "Snoop" and c.peer_id == ch.id]:
            self.pbx.ev("ChannelHangupRequest", snoop, cause=16)
            self.teardown(snoop, 16)

    # ---- in-call operations --------------------------------------------------------------
    def answer(self, channel_id: str) -> None:
        ch = self.stasis_channel(channel_id)
        if ch.state != "Up":
            ch.answered = True
            self.pbx.set_state(ch, "Up")
            if ch.tech == "PJSIP":
                self.pbx.endpoint_device_state(self.pbx.endpoints[ch.resource])

    def ring(self, channel_id: str) -> None:
        self.stasis_channel(channel_id)  # an inbound channel stays in state Ring (trace)

    def continue_(self, channel_id: str) -> None:
        ch = self.stasis_channel(channel_id)
        self.stasis_end(ch)
        # every from-endpoints extension ends in Hangup() after Stasis()
        self.pbx.later(0, self._after_continue, ch, channel=ch)

    def _after_continue(self, ch: Channel) -> None:
        self.pbx.dialplan(ch, "Hangup", "", ch.priority + 1)
        self.pbx.ev("ChannelHangupRequest", ch, cause=16, soft=True)
        ch.continues = False
        self.teardown(ch, 16)

    def snoop(self, channel_id: str, params: dict[str, Any]) -> dict[str, Any]:
        target = self.get(channel_id)
        app = params.get("app")
        if not app:
            raise AriError(400, "Application name is required")
        spy = params.get("spy", "none")
        whisper = params.get("whisper", "none")
        if spy not in ("none", "in", "out", "both") or whisper not in ("none", "in", "out", "both"):
            raise AriError(400, "Invalid direction specified")
        if spy == "none" and whisper == "none":
            raise AriError(400, "Direction must be specified for at least spy or whisper")
        sid = params.get("snoopId") or self.pbx.new_channel_id()
        if sid in self.pbx.channels:
            # the real Asterisk: 500, not the 409 of originate ("Channel Unique ID ... already
            # in use" in its log)
            raise AriError(500, "Snoop channel could not be created")
        snoop = Channel(id=sid, name=self.pbx.channel_name("Snoop", target.id), tech="Snoop",
                        state="Up", answered=True, peer_id=target.id, stasis_app=app,
                        args=str(params.get("appArgs") or "").split(",") if params.get("appArgs") else [])
        self.pbx.add_channel(snoop)
        self._stasis_start(snoop)
        return snoop.json()

    def get_variable(self, channel_id: str, name: str | None) -> dict[str, str]:
        ch = self.get(channel_id)
        if not name:
            raise AriError(400, "Variable name is required")
        if name == "CHANNEL(pjsip,remote_addr)":
            ep = self.pbx.endpoints.get(ch.resource) if ch.tech == "PJSIP" else None
            return {"value": f"{ep.ip}:{ep.port}" if ep else ""}
        builtin = {"CHANNEL(name)": ch.name, "CHANNEL(state)": ch.state, "UNIQUEID": ch.id,
                   "CALLERID(num)": ch.caller["number"], "CALLERID(name)": ch.caller["name"]}
        if name in builtin:
            return {"value": builtin[name]}
        if name in ch.variables and not name.startswith("__"):
            return {"value": ch.variables[name]}
        raise AriError(404, "Provided variable was not found")

    def set_variable(self, channel_id: str, name: str | None, value: str) -> None:
        ch = self.get(channel_id)
        if not name:
            raise AriError(400, "Variable name is required")
        self.pbx.varset(ch, name, value)
