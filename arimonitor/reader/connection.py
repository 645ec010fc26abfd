"""One WebSocket connection's lifetime; the reconnect loop (process.py) decides what follows.

`Connection.run()` connects, forwards every frame untouched (the frames already waiting in
the socket go together as one batch; a batch never waits for more), pings when idle, and
returns an Outcome saying why it ended and whether it was healthy (so the backoff may reset)
or an authentication failure (logged as such, not as a network blip).
"""

from __future__ import annotations

import base64
import http.client
import logging
import select
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import websocket

from arimonitor import protocol
from arimonitor.reader.forwarder import MAX_BATCH, MAX_BATCH_BYTES, Forwarder

log = logging.getLogger(__name__)

HEALTHY_AFTER = 5.0  # seconds connected before a drop counts as a blip, not a failing server


@dataclass
class Outcome:
    reason: str
    connected: bool = False     # the handshake succeeded
    healthy: bool = False       # stayed up long enough to reset the backoff
    auth_failed: bool = False
    refused: bool = False       # Asterisk answered the handshake with an HTTP error


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
                "batches": forwarder.batches,
                "notices_dropped": forwarder.notices_dropped,
                "refused": getattr(forwarder, "refused", 0), "t": now}


def events_url(ari_url: str, app: str) -> str:
    """http://host:8088/ari -> ws://host:8088/ari/events?app=APP&subscribeAll=true"""
    parts = urlsplit(ari_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = urlencode({"app": app, "subscribeAll": "true"})
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/events", query, ""))


def basic_auth(user: str, password: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def asterisk_answers(ari_url: str, auth_header: str, timeout: float = 0.5) -> bool:
    """One GET /asterisk/info: does ARI answer (200) right now? Never through a proxy."""
    name, _, value = auth_header.partition(": ")
    request = urllib.request.Request(ari_url.rstrip("/") + "/asterisk/info", headers={name: value})
    try:
        with _DIRECT.open(request, timeout=timeout) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException):
        return False


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _readiness(ws: websocket.WebSocket) -> Callable[[], bool]:
    """A no-wait test: is more WebSocket data already here (kernel, TLS or client buffer)?"""
    sock = ws.sock
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    poll = poller.poll
    pending = getattr(sock, "pending", None)  # TLS: bytes decrypted but not yet read
    frame_buffer = getattr(ws, "frame_buffer", None)

    def ready() -> bool:
        if frame_buffer is not None and getattr(frame_buffer, "recv_buffer", None):
            return True
        if pending is not None and pending():
            return True
        return bool(poll(0))

    return ready


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
            headers = {k.lower(): v for k, v in (exc.resp_headers or {}).items()}
            if not (headers.get("server", "").startswith("Asterisk")
                    or "Asterisk REST Interface" in headers.get("www-authenticate", "")):
                return Outcome(f"handshake refused: HTTP {exc.status_code} from a server that is not "
                               "Asterisk's ARI (check [ari] url: host, port and the /ari prefix)")
            if exc.status_code in (401, 403):
                return Outcome(f"authentication refused (HTTP {exc.status_code}): check [ari] user "
                               "and password against ari.conf", auth_failed=True)
            return Outcome(f"handshake refused: HTTP {exc.status_code}", refused=True)
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
        reason = "stopping"
        text, binary = websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY
        monotonic, now_wall = time.monotonic, time.time
        ready = _readiness(ws)
        recv = ws.recv_data
        # Frames received but not yet forwarded: a batch grows only while more frames are
        # already waiting (`ready()`, no wait), and is sent before the next recv could block.
        batch: list[bytes] = []
        batch_t = 0.0
        batch_bytes = 0
        seq = 0  # last frame forwarded (or dropped) so far

        def flush() -> None:
            nonlocal seq, batch, batch_bytes
            n = len(batch)
            fwd.frames(server, epoch, seq + 1, batch, batch_t)
            before, seq = seq, seq + n
            stats.frames += n
            stats.bytes += batch_bytes
            stats.last_frame_at = batch_t
            stats.seq = seq
            batch, batch_bytes = [], 0
            if before >> 10 != seq >> 10:
                self.on_idle()  # stats stay timely under a flood too

        try:
            while not self.stopping():
                if batch and (len(batch) >= MAX_BATCH or batch_bytes >= MAX_BATCH_BYTES or not ready()):
                    flush()
                try:
                    opcode, data = recv(control_frame=True)
                except websocket.WebSocketTimeoutException:
                    now = monotonic()
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
                    if not batch:
                        batch_t = now_wall()
                        last_rx = monotonic()
                    batch.append(data)
                    batch_bytes += len(data)
                    continue
                last_rx = monotonic()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    reason = "closed by Asterisk"
                    break
        except (OSError, websocket.WebSocketException) as exc:
            reason = f"connection lost: {exc or type(exc).__name__}"
        finally:
            if batch:
                flush()  # what arrived before the end still counts
            try:
                ws.close(timeout=0.5)
            except (OSError, websocket.WebSocketException):
                pass
            stats.connected_since = 0.0
            fwd.notice(protocol.link_notice(server, epoch, protocol.LINK_DISCONNECTED, reason))
        return Outcome(reason, connected=True, healthy=time.monotonic() - started >= HEALTHY_AFTER)
