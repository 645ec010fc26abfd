"""The reader's PUSH to the engine, which never blocks on a dead or slow engine.

Policy: drop and count. The socket is IMMEDIATE (no queue towards an engine that is not
connected) with a high-water mark of EVENTS_HWM messages; a send that would block is dropped
and counted. The engine sees the gap in the sequence numbers, counts the lost frames and
resynchronises from ARI REST, so a drop costs a resync, never a wrong state, and the reader
keeps draining Asterisk's WebSocket (Asterisk must not see a stalled consumer of its app).
"""

from __future__ import annotations

import zmq

from arimonitor import protocol

EVENTS_HWM = 50_000  # ~25 MB of 500-byte frames: seconds of a full-speed burst


class Forwarder:
    def __init__(self, endpoint: str, context: zmq.Context | None = None, hwm: int = EVENTS_HWM) -> None:
        self.context = context or zmq.Context.instance()
        self.sock = self.context.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, hwm)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)
        self.sock.connect(endpoint)
        self._prefixes: dict[str, bytes] = {}
        self.sent = 0
        self.dropped = 0
        self.notices_dropped = 0

    def frame(self, server: str, epoch: int, seq: int, data: bytes, received: float) -> bool:
        # Same bytes as protocol.ari_frame's header, built without json.dumps (hot path).
        prefix = self._prefixes.get(server)
        if prefix is None:
            prefix = self._prefixes[server] = b'{"server":' + protocol.dumps(server) + b',"epoch":'
        header = b"%s%d,\"seq\":%d,\"t\":%r}" % (prefix, epoch, seq, received)
        try:
            self.sock.send_multipart((protocol.KIND_ARI, header, data), zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def notice(self, parts: list[bytes]) -> bool:
        """Link notices and stats: also never blocking; the engine resyncs at start anyway."""
        try:
            self.sock.send_multipart(parts, zmq.NOBLOCK)
        except zmq.Again:
            self.notices_dropped += 1
            return False
        return True

    def close(self) -> None:
        self.sock.close(0)
