"""The simulated PBX: state, clock, event helpers and endpoint registration.

Everything runs on one asyncio loop, so no locks: REST handlers, timers and the control API
all mutate state from that loop.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arimonitor.sim import shapes
from arimonitor.sim.hub import Hub, Scope
from arimonitor.sim.shapes import event
from arimonitor.sim.state import Bridge, Channel, Endpoint, Recording


class Pbx:
    def __init__(self, app: str, recordings: str | Path, endpoints: list[str] | None = None,
                 seed: int = 1, time_scale: float = 1.0) -> None:
        self.default_app = app
        self.recordings_dir = Path(recordings)
        self.seed = seed
        self.rng = random.Random(seed)
        self.time_scale = time_scale
        self.endpoints: dict[str, Endpoint] = {}
        for resource in endpoints or []:
            self.add_endpoint(resource)
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.recordings: dict[str, Recording] = {}
        self.counters: dict[str, int] = {}
        self.timers: set[asyncio.TimerHandle] = set()
        self.entity_id = "02:fc:00:00:00:01"
        self.startup = self.reload = time.time()
        self.hub = Hub(self.entity_id)
        self.generation = 0  # bumped by restart: stale timers check it

    # ---- clock -------------------------------------------------------------------------
    def later(self, seconds: float, fn: Callable[..., Any], *args: Any,
              channel: Channel | None = None, scaled: bool = True) -> asyncio.TimerHandle:
        """Run `fn` after `seconds` (scaled unless told); tied to `channel` so its hangup cancels it."""
        loop = asyncio.get_running_loop()
        generation = self.generation

        def fire() -> None:
            self.timers.discard(handle)
            if channel is not None and handle in channel.timers:
                channel.timers.remove(handle)
            if generation != self.generation or (channel is not None and channel.gone):
                return
            fn(*args)

        handle = loop.call_later(max(0.0, seconds * (self.time_scale if scaled else 1.0)), fire)
        self.timers.add(handle)
        if channel is not None:
            channel.timers.append(handle)
        return handle

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def next_index(self, kind: str) -> int:
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return self.counters[kind]

    def new_channel_id(self) -> str:
        # Asterisk's unique ids: "<epoch seconds>.<counter>"
        return f"{int(time.time())}.{self.next_index('uniqueid') - 1}"

    # ---- events ------------------------------------------------------------------------
    def emit(self, body: dict[str, Any], scope: Scope | None = None) -> None:
        self.hub.publish(body, scope or Scope())

    def ev(self, kind: str, ch: Channel, **fields: Any) -> None:
        """A channel event; `fields` come before `channel`, as Asterisk orders them."""
        fields["channel"] = ch.json()
        self.emit(event(kind, **fields), Scope(channel=ch))

    def varset(self, ch: Channel, variable: str, value: str) -> None:
        ch.variables[variable] = value
        self.ev("ChannelVarset", ch, variable=variable, value=value)

    def set_state(self, ch: Channel, state: str) -> None:
        ch.state = state
        self.ev("ChannelStateChange", ch)

    def dialplan(self, ch: Channel, app: str, data: str, priority: int | None = None) -> None:
        if priority is not None:
            ch.priority = priority
        ch.app_name, ch.app_data = app, data
        self.ev("ChannelDialplan", ch, dialplan_app=app, dialplan_app_data=data)

    def device_state(self, name: str, state: str) -> None:
        self.emit(event("DeviceStateChanged", device_state={"name": name, "state": state}),
                  Scope(device=name))

    def endpoint_changed(self, ep: Endpoint) -> None:
        self.emit(event("EndpointStateChange", endpoint=ep.json()),
                  Scope(endpoint=ep.key, endpoint_only=True))

    def endpoint_device_state(self, ep: Endpoint) -> None:
        if not ep.registered or not ep.reachable:
            state = "UNAVAILABLE"
        elif any(self.channels[c].state == "Up" for c in ep.channel_ids if c in self.channels):
            state = "INUSE"
        elif ep.channel_ids:
            state = "RINGING"
        else:
            state = "NOT_INUSE"
        self.device_state(ep.key, state)

    # ---- endpoints ---------------------------------------------------------------------
    def add_endpoint(self, resource: str, cli: str = "") -> Endpoint:
        if resource not in self.endpoints:
            self.endpoints[resource] = Endpoint(resource, cli=cli)
        return self.endpoints[resource]

    def _peer(self, ep: Endpoint, status: str) -> None:
        self.emit(event("PeerStatusChange", endpoint=ep.json(), peer={"peer_status": status}),
                  Scope(endpoint=ep.key))

    def _contact(self, ep: Endpoint, status: str, rtt: int = 0, uri: str | None = None) -> None:
        info = shapes.contact_info(uri or ep.uri, status, ep.resource, rtt)
        self.emit(event("ContactStatusChange", endpoint=ep.json(), contact_info=info),
                  Scope(endpoint=ep.key))

    def register(self, resource: str, ip: str = "127.0.0.1", port: int = 5060,
                 qualify: bool = False, user_agent: str = "arimonitor-sim") -> Endpoint:
        """A phone registers (or re-registers from another address)."""
        ep = self.add_endpoint(resource)
        if ep.registered:
            if (ep.ip, ep.port) != (ip, port):
                # the new contact comes, then the old one goes (the real Asterisk's order with
                # max_contacts=1, remove_existing=yes); the peer stays reachable
                old = ep.uri
                ep.ip, ep.port, ep.user_agent = ip, port, user_agent
                self._contact(ep, "Reachable" if ep.qualify else "NonQualified", self._rtt())
                self._contact(ep, "Removed", uri=old)
            return ep
        ep.ip, ep.port, ep.qualify, ep.user_agent = ip, port, qualify, user_agent
        ep.call_id = f"{self.uuid()}@{ip}"
        ep.registered = True
        if qualify:
            # seen in registration_qualify: contact first (endpoint still offline), then peer
            self._contact(ep, "NonQualified")
            ep.reachable = True
            self.endpoint_changed(ep)
            self._peer(ep, "Reachable")
            self._contact(ep, "Reachable", self._rtt())
            self.endpoint_device_state(ep)
        else:
            ep.reachable = True
            self.endpoint_changed(ep)
            self._peer(ep, "Reachable")
            self.endpoint_device_state(ep)
            self._contact(ep, "NonQualified")
        return ep

    def _rtt(self) -> int:
        return self.rng.randint(300, 2000)

    def set_reachable(self, resource: str, reachable: bool) -> Endpoint:
        """Qualify (OPTIONS) result for a registered contact."""
        ep = self.endpoints[resource]
        if not ep.registered or ep.reachable == reachable:
            return ep
        ep.reachable = reachable
        self.endpoint_changed(ep)
        if reachable:
            self.endpoint_device_state(ep)
            self._peer(ep, "Reachable")
            self._contact(ep, "Reachable", self._rtt())
        else:
            self._peer(ep, "Unreachable")
            self._contact(ep, "Unreachable")
            self.endpoint_device_state(ep)
        return ep

    def unregister(self, resource: str) -> Endpoint:
        ep = self.endpoints[resource]
        if not ep.registered:
            return ep
        ep.registered = False
        ep.reachable = False
        self.endpoint_changed(ep)
        self._peer(ep, "Unreachable")
        self._contact(ep, "Removed")
        self.endpoint_device_state(ep)
        return ep

    # ---- channel bookkeeping -----------------------------------------------------------
    def add_channel(self, ch: Channel) -> Channel:
        self.channels[ch.id] = ch
        ep = self.endpoints.get(ch.resource) if ch.tech == "PJSIP" else None
        if ep is not None:
            ep.channel_ids.append(ch.id)
            self.endpoint_changed(ep)
        self.ev("ChannelCreated", ch)
        return ch

    def channel_name(self, tech: str, base: str) -> str:
        return f"{tech}/{base}-{self.next_index('chan:' + tech):08x}"

    def forget_channel(self, ch: Channel) -> None:
        ch.gone = True
        for handle in ch.timers:
            handle.cancel()
            self.timers.discard(handle)
        ch.timers.clear()
        self.channels.pop(ch.id, None)
        ep = self.endpoints.get(ch.resource) if ch.tech == "PJSIP" else None
        if ep is not None and ch.id in ep.channel_ids:
            ep.channel_ids.remove(ch.id)
            self.endpoint_changed(ep)
            self.endpoint_device_state(ep)

    def restart(self) -> None:
        """Asterisk restarts: every channel, bridge and live recording is gone without events.

        Contacts survive (Asterisk keeps them in its astdb), as on a real restart.
        """
        self.generation += 1
        for handle in self.timers:
            handle.cancel()
        self.timers.clear()
        for ch in self.channels.values():
            ch.gone = True
        self.channels.clear()
        self.bridges.clear()
        self.recordings.clear()
        for ep in self.endpoints.values():
            ep.channel_ids.clear()
        self.counters.clear()
        self.startup = self.reload = time.time()
        self.entity_id = "02:fc:{:02x}:{:02x}:{:02x}:{:02x}".format(*tuple(self.rng.randrange(256) for _ in range(4)))
        self.hub.entity_id = self.entity_id
