"""One WebSocket connection's lifetime; the reconnect loop (process.py) decides what follows.

`Connection.run()` connects, forwards every frame untouched, pings when idle, and returns an
Outcome saying why it ended and whether it was healthy (so the backoff may reset) or an
authentication failure (logged as such, not as a network blip).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import websocket

from arimonitor import protocol
from arimonitor.reader.forwarder import Forwarder

log = logging.getLogger(__name__)

HEALTHY_AFTER = 5.0  # seconds connected before a drop counts as a blip, not a failing server


@dataclass
class Outcome:
    reason: str
    connected: bool = False     # the handshake succeeded
    healthy: bool = False       # stayed up long enough to reset the backoff
    auth_failed: bool = False


@dataclass
class ReaderStats:
    frames: int = 0
    bytes: int = 0
    reconnects: int = 0
    connects: int = 0
    auth_failures: int = 0
    dead_links: int = 0
    last_frame_at: float = 0.0
    connected_since: float = 0.0
    epoch: int = 0
    seq: int = 0

    def view(self, forwarder: Forwarder, server: str) -> dict:
        now = time.time()
        return {"server": server, "frames": self.frames, "bytes": self.bytes,
                "reconnects": self.reconnects, "connects": self.connects,
                "auth_failures": self.auth_failures, "dead_links": self.dead_links,
                "last_frame_age": round(now - self.last_frame_at, 3) if self.last_frame_at else None,
                "connected_since": self.connected_since or None, "epoch": self.epoch,
                "seq": self.seq, "sent": forwarder.sent, "dropped": forwarder.dropped,
                "notices_dropped": forwarder.notices_dropped, "t": now}


def events_url(ari_url: str, app: str) -> str:
    """http://host:8088/ari -> ws://host:8088/ari/events?app=APP&subscribeAll=true"""
    parts = urlsplit(ari_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = urlencode({"app": app, "subscribeAll": "true"})
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/events", query, ""))


def basic_auth(user: str, password: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Connection:
    def __init__(self, *, url: str, auth_header: str, server: str, epoch: int,
                 ping_interval: float, forwarder: Forwarder, stats: ReaderStats,
                 stopping: Callable[[], bool], on_idle: Callable[[], None] = lambda: None,
                 connect_timeout: float = 5.0) -> None:
        self.url = url
        self._auth = auth_header
        self.server = server
        self.epoch = epoch
        self.ping_interval = ping_interval
        self.forwarder = forwarder
        self.stats = stats
        self.stopping = stopping
        self.on_idle = on_idle
        self.connect_timeout = connect_timeout

    def run(self) -> Outcome:
        try:
            ws = websocket.create_connection(
                self.url, header=[self._auth], timeout=self.connect_timeout,
                skip_utf8_validation=True, enable_multithread=False)
        except websocket.WebSocketBadStatusException as exc:
            if exc.status_code in (401, 403):
                return Outcome(f"authentication refused (HTTP {exc.status_code}): check [ari] user "
                               "and password against ari.conf", auth_failed=True)
            return Outcome(f"handshake refused: HTTP {exc.status_code}")
        except (OSError, websocket.WebSocketException) as exc:
            return Outcome(f"cannot connect: {exc or type(exc).__name__}")
        return self._session(ws)

    def _session(self, ws: websocket.WebSocket) -> Outcome:
        stats, fwd, server, epoch = self.stats, self.forwarder, self.server, self.epoch
        started = time.monotonic()
        stats.connects += 1
        stats.epoch, stats.seq, stats.connected_since = epoch, 0, time.time()
        fwd.notice(protocol.link_notice(server, epoch, protocol.LINK_CONNECTED))
        log.info("connected to %s (epoch %d)", self.url, epoch)
        interval = self.ping_interval
        ws.settimeout(min(1.0, interval / 4))
        last_rx = last_ping = time.monotonic()
        seq = 0
        reason = "stopping"
        text, binary = websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY
        monotonic = time.monotonic
        try:
            while not self.stopping():
                try:
                    opcode, data = ws.recv_data(control_frame=True)
                except websocket.WebSocketTimeoutException:
                    now = time.monotonic()
                    if now - last_rx > 2 * interval:
                        stats.dead_links += 1
                        reason = f"no traffic and no pong for {now - last_rx:.1f} s (dead link)"
                        break
                    if now - last_ping >= interval:
                        ws.ping()
                        last_ping = now
                    self.on_idle()
                    continue
                if opcode == text or opcode == binary:
                    seq += 1
                    received = time.time()
                    fwd.frame(server, epoch, seq, data, received)
                    stats.frames += 1
                    stats.bytes += len(data)
                    stats.last_frame_at = received
                    stats.seq = seq
                    last_rx = monotonic()
                    if not seq & 1023:
                        self.on_idle()  # stats stay timely under a flood too
                    continue
                last_rx = time.monotonic()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    reason = "closed by Asterisk"
                    break
        except (OSError, websocket.WebSocketException) as exc:
            reason = f"connection lost: {exc or type(exc).__name__}"
        finally:
            try:
                ws.close(timeout=0.5)
            except (OSError, websocket.WebSocketException):
                pass
            stats.connected_since = 0.0
            fwd.notice(protocol.link_notice(server, epoch, protocol.LINK_DISCONNECTED, reason))
        return Outcome(reason, connected=True, healthy=time.monotonic() - started >= HEALTHY_AFTER)
