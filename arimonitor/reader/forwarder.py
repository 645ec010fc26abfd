"""The reader's PUSH to the engine, which never blocks on a dead or slow engine.

Policy: drop and count. The socket is IMMEDIATE (no queue towards an engine that is not
connected) with a high-water mark of EVENTS_HWM messages; a send that would block is dropped
and counted. The engine sees the gap in the sequence numbers, counts the lost frames and
resynchronises from ARI REST, so a drop costs a resync, never a wrong state, and the reader
keeps draining Asterisk's WebSocket (Asterisk must not see a stalled consumer of its app).

Batching: `frames()` sends the frames the reader found already waiting as one `ari-batch`
message (one ZeroMQ send, one engine wake-up, one header for many frames); a lone frame goes
as a plain `ari` message, as before. A batch is dropped or sent whole. `sent` and `dropped`
count frames; `batches` counts batch messages sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import zmq
from zmq.utils.monitor import parse_monitor_message

from arimonitor import protocol
from arimonitor.zmqbind import tcp_liveness

EVENTS_HWM = 50_000  # messages: ~25 MB of lone 500-byte frames, seconds of a full-speed burst
# A batch closes at whichever limit comes first. The HWM counts messages, so a backlog of full
# batches could hold up to MAX_BATCH times more; batches only form while the reader is behind
# Asterisk, and each is bounded to MAX_BATCH_BYTES.
MAX_BATCH = 64
MAX_BATCH_BYTES = 64 * 1024
# libzmq never reconnects after the engine refused our CURVE key; we do, this often, so a key
# listed later (and the engine restarted) is picked up without touching the reader.
REFUSED_RETRY = 5.0

log = logging.getLogger(__name__)


class Forwarder:
    def __init__(self, endpoint: str, context: zmq.Context | None = None, hwm: int = EVENTS_HWM,
                 secure: Callable[[zmq.Socket], None] | None = None) -> None:
        self.context = context or zmq.Context.instance()
        self.sock = self.context.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, hwm)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)
        if endpoint.startswith("tcp://"):
            tcp_liveness(self.sock)
        self.endpoint = endpoint
        self.refused = 0
        self._retry_at = 0.0
        self._monitor: zmq.Socket | None = None
        if secure is not None:
            secure(self.sock)  # CURVE client keys (curve.py), set before connecting
            self._monitor = self.sock.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_SUCCEEDED
                | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
        self.sock.connect(endpoint)
        self._prefixes: dict[str, bytes] = {}
        self.sent = 0
        self.dropped = 0
        self.batches = 0
        self.notices_dropped = 0

    def frame(self, server: str, epoch: int, seq: int, data: bytes, received: float) -> bool:
        header = protocol.ari_header(self._prefix(server), epoch, seq, received)
        try:
            self.sock.send_multipart((protocol.KIND_ARI, header, data), zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def frames(self, server: str, epoch: int, first_seq: int, frames: list[bytes],
               received: float) -> bool:
        """Consecutive frames of one connection, the first numbered first_seq, in one message."""
        n = len(frames)
        if n == 1:
            return self.frame(server, epoch, first_seq, frames[0], received)
        header = protocol.ari_header(self._prefix(server), epoch, first_seq, received, n)
        try:
            self.sock.send_multipart((protocol.KIND_ARI_BATCH, header, *frames), zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += n
            return False
        self.sent += n
        self.batches += 1
        return True

    def _prefix(self, server: str) -> bytes:
        prefix = self._prefixes.get(server)
        if prefix is None:
            prefix = self._prefixes[server] = protocol.ari_header_prefix(server)
        return prefix

    def notice(self, parts: list[bytes]) -> bool:
        """Link notices and stats: also never blocking; the engine resyncs at start anyway."""
        try:
            self.sock.send_multipart(parts, zmq.NOBLOCK)
        except zmq.Again:
            self.notices_dropped += 1
            return False
        return True

    def watch(self) -> None:
        """With CURVE: note a refusal by the engine (logged once, then counted) and connect
        again REFUSED_RETRY later. Called from the reader's idle and backoff waits."""
        if self._monitor is None:
            return
        while True:
            try:
                event = parse_monitor_message(self._monitor.recv_multipart(zmq.NOBLOCK))["event"]
            except zmq.Again:
                break
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                if self.refused:
                    log.info("the engine at %s accepts our CURVE key now", self.endpoint)
                self.refused, self._retry_at = 0, 0.0
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                if not self.refused:
                    log.error("the engine at %s refused our CURVE key: copy this host's "
                              "reader.key into its [zmq] readers folder and restart it; trying "
                              "again every %.0f s, events meanwhile dropped and counted",
                              self.endpoint, REFUSED_RETRY)
                self.refused += 1
                self._retry_at = time.monotonic() + REFUSED_RETRY
            else:  # libzmq retries these itself, backing off to RECONNECT_IVL_MAX
                if not self.refused:
                    log.error("the CURVE handshake with the engine at %s failed: is [zmq] keys' "
                              "engine.key the engine's own public key? retrying; events meanwhile "
                              "dropped and counted", self.endpoint)
                self.refused += 1
        if self._retry_at and time.monotonic() >= self._retry_at:
            self._retry_at = 0.0
            self.sock.disconnect(self.endpoint)
            self.sock.connect(self.endpoint)

    def close(self) -> None:
        if self._monitor is not None:
            self.sock.disable_monitor()
            self._monitor.close(0)
        self.sock.close(0)
