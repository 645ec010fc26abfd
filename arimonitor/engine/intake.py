"""The events socket: reader envelopes in, ARI frames to the handlers (the hot path).

Per message: one small json.loads of the header, a sequence check, then Handlers.apply.
A gap in a connection's sequence numbers means the reader dropped frames (its PUSH was full):
counted, and a resync repairs the state. Frames received before the last resync began are
superseded by that snapshot and dropped (a backlog queued while the engine was down).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import zmq

from arimonitor import protocol
from arimonitor.engine.handlers import Handlers

log = logging.getLogger(__name__)

_decode = json.JSONDecoder().decode
BATCH = 500  # messages per wake-up before the loop looks at its other sockets


class Intake:
    def __init__(self, handlers: Handlers, services: Any) -> None:
        self.handlers = handlers
        self.services = services
        self.counters = handlers.counters
        self.epoch: Any = None
        self.seq = 0
        self.superseded_before = 0.0
        self.last_frame_t = 0.0       # reader's receive time of the newest frame applied
        self.last_frame_at = 0.0      # our clock when it was applied
        self.lag = 0.0                # seconds from reader receive to applied, last frame
        self.max_lag = 0.0
        self.batch_max = 0

    def on_readable(self, sock: zmq.Socket) -> None:
        n = 0
        recv = sock.recv_multipart
        apply = self.handlers.apply
        counters = self.counters
        t = 0.0
        for n in range(1, BATCH + 1):
            try:
                parts = recv(zmq.NOBLOCK)
            except zmq.Again:
                n -= 1
                break
            kind = parts[0]
            if kind == protocol.KIND_ARI and len(parts) == 3:
                try:
                    header = _decode(parts[1].decode())
                    t = header["t"]
                    epoch, seq = header["epoch"], header["seq"]
                except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                    self._bad(parts, "bad ari header")
                    continue
                counters.bytes += len(parts[2])
                if epoch != self.epoch:
                    self.epoch, self.seq = epoch, seq
                    self.services.on_new_epoch(header.get("server"), epoch, t)
                else:
                    expected = self.seq + 1
                    self.seq = seq
                    if seq != expected and seq > expected:
                        self.services.on_frames_lost(seq - expected, f"epoch {epoch} seq {expected}..{seq - 1}")
                if t < self.superseded_before:
                    counters.received += 1
                    counters.superseded += 1
                    continue
                apply(parts[2], t, (epoch, seq))
            elif kind == protocol.KIND_LINK and len(parts) == 2:
                notice = self._json(parts)
                if notice is not None:
                    self.services.on_link(notice)
            elif kind == protocol.KIND_READER_STATS and len(parts) == 2:
                stats = self._json(parts)
                if stats is not None:
                    self.services.on_reader_stats(stats)
            else:
                self._bad(parts, "unknown message kind or part count")
        if t:
            now = time.time()
            self.last_frame_t, self.last_frame_at = t, now
            self.lag = now - t
            self.max_lag = max(self.max_lag, self.lag)
        self.batch_max = max(self.batch_max, n)

    def _json(self, parts: list[bytes]) -> dict | None:
        try:
            body = json.loads(parts[1])
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._bad(parts, "body is not a JSON object")
            return None
        return body

    def _bad(self, parts: list[bytes], why: str) -> None:
        self.counters.malformed += 1
        log.warning("malformed message on the events socket: %s: %r", why,
                    [p[:120] for p in parts[:4]])

    def last_event_age(self) -> float | None:
        return round(time.time() - self.last_frame_t, 3) if self.last_frame_t else None

    def view(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "seq": self.seq, "last_event_age": self.last_event_age(),
                "lag_ms": round(self.lag * 1000, 3), "max_lag_ms": round(self.max_lag * 1000, 3),
                "batch_max": self.batch_max,
                "superseded_before": self.superseded_before}
