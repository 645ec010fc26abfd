"""Who gets which event: Stasis applications, their WebSockets and subscriptions.

Delivery follows what Asterisk 22 did in the captures (docs/ARCHITECTURE.md, "ARI simulator"):
- subscribeAll: every event once, except RecordingStarted/Finished/Failed which arrive twice;
  EndpointStateChange never (an explicit endpoint subscription is ignored under subscribeAll).
- without subscribeAll: one copy per matching subscription (a channel in our Stasis app counts
  as one, `endpoint:PJSIP` as another), so such channel events arrive twice.
- StasisStart/StasisEnd only to the app that owns the channel.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from arimonitor.sim.shapes import event


@dataclass
class Scope:
    """What an event is about, for subscription matching."""

    channel: Any = None  # state.Channel
    endpoint: str = ""  # "PJSIP/1003000"
    bridge: Any = None  # state.Bridge
    device: str = ""
    app_only: str = ""  # StasisStart/End: only this app
    endpoint_only: bool = False  # EndpointStateChange
    twice: bool = False  # recording events under subscribeAll


@dataclass
class Connection:
    ws: web.WebSocketResponse
    app: str
    subscribe_all: bool
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    active: bool = True
    sent: int = 0


@dataclass
class Application:
    name: str
    subscriptions: set[str] = field(default_factory=set)  # "endpoint:PJSIP", "channel:ID", ...
    connection: Connection | None = None

    def json(self, channel_ids: list[str], bridge_ids: list[str]) -> dict[str, Any]:
        subs = sorted(self.subscriptions)
        endpoints = [s.split(":", 1)[1] for s in subs if s.startswith("endpoint:")]
        devices = [s.split(":", 1)[1] for s in subs if s.startswith("deviceState:")]
        channels = channel_ids + [s.split(":", 1)[1] for s in subs if s.startswith("channel:")]
        bridges = bridge_ids + [s.split(":", 1)[1] for s in subs if s.startswith("bridge:")]
        return {"name": self.name, "channel_ids": channels, "bridge_ids": bridges,
                "endpoint_ids": endpoints, "device_names": devices,
                "events_allowed": [], "events_disallowed": []}


class Hub:
    """Applications, their connections, and a log of every event sent (for the control API)."""

    def __init__(self, entity_id: str, log_size: int = 20000) -> None:
        self.entity_id = entity_id
        self.apps: dict[str, Application] = {}
        self.connections: list[Connection] = []
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self.emitted = 0

    def app(self, name: str) -> Application:
        if name not in self.apps:
            self.apps[name] = Application(name)
        return self.apps[name]

    def attach(self, ws: web.WebSocketResponse, app: str, subscribe_all: bool) -> Connection:
        conn = Connection(ws, app, subscribe_all)
        application = self.app(app)
        old = application.connection
        if old is not None and old.active:
            # a second connection for the same app takes it over (NOTES.md)
            old.queue.put_nowait(self._encode(event("ApplicationReplaced"), app))
            old.active = False
        application.connection = conn
        self.connections.append(conn)
        return conn

    def detach(self, conn: Connection) -> None:
        conn.active = False
        if conn in self.connections:
            self.connections.remove(conn)
        application = self.apps.get(conn.app)
        if application is not None and application.connection is conn:
            application.connection = None

    def owner(self, app: str) -> Connection | None:
        application = self.apps.get(app)
        return application.connection if application else None

    def _encode(self, body: dict[str, Any], app: str) -> str:
        body = dict(body)
        body["asterisk_id"] = self.entity_id
        body["application"] = app
        return json.dumps(body, separators=(",", ":"))

    def _copies(self, conn: Connection, scope: Scope) -> int:
        if scope.app_only:
            return 1 if scope.app_only == conn.app else 0
        if conn.subscribe_all:
            if scope.endpoint_only:
                return 0
            return 2 if scope.twice else 1
        subs = self.apps[conn.app].subscriptions
        n = 0
        ch = scope.channel
        if ch is not None and (ch.app == conn.app or f"channel:{ch.id}" in subs):
            n += 1
        endpoint = scope.endpoint or (f"{ch.tech}/{ch.resource}" if ch is not None and ch.resource else "")
        if endpoint and (f"endpoint:{endpoint}" in subs or f"endpoint:{endpoint.split('/')[0]}" in subs):
            n += 1
        br = scope.bridge
        if br is not None and (br.app == conn.app or f"bridge:{br.id}" in subs):
            n += 1
        if scope.device and f"deviceState:{scope.device}" in subs:
            n += 1
        return n

    def publish(self, body: dict[str, Any], scope: Scope) -> None:
        self.emitted += 1
        self.log.append(body)
        frames: dict[str, str] = {}
        for conn in self.connections:
            if not conn.active:
                continue
            n = self._copies(conn, scope)
            if not n:
                continue
            if conn.app not in frames:
                frames[conn.app] = self._encode(body, conn.app)
            for _ in range(n):
                conn.queue.put_nowait(frames[conn.app])

    def send_raw(self, frame: str | bytes, app: str | None = None) -> int:
        """A frame as is (fault injection, blast mode) to every active connection (of `app`)."""
        n = 0
        for conn in self.connections:
            if conn.active and (app is None or conn.app == app):
                conn.queue.put_nowait(frame)
                n += 1
        return n

    async def drop_all(self, code: int = 1006) -> int:
        """Close every WebSocket (fault injection, restart)."""
        conns = list(self.connections)
        for conn in conns:
            conn.active = False
            conn.queue.put_nowait(None)
        for conn in conns:
            try:
                await conn.ws.close(code=code if code != 1006 else 1011, message=b"sim: dropped")
            except (ConnectionError, RuntimeError):
                pass
            self.detach(conn)
        return len(conns)


async def writer(conn: Connection) -> None:
    """One task per connection: frames go out in order; None ends it."""
    ws = conn.ws
    while True:
        frame = await conn.queue.get()
        if frame is None or ws.closed:
            return
        try:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
            conn.sent += 1
        except (ConnectionError, RuntimeError):
            return
