"""The events socket: reader envelopes in, ARI frames to the handlers (the hot path).

Per message: one small JSON decode of the header, a sequence check, then Handlers.apply for
its frame (`ari`) or each of its frames (`ari-batch`: one header for n consecutive frames,
frame i numbered seq + i, all with the batch's receive time).
Each message goes to the lane of its header's `server` (one per watched Asterisk, engine/
watch.py): that server's handlers, link monitor and sequence numbers. A message of a server
not configured is set aside and counted (`other_servers`).
A gap in a connection's sequence numbers means frames were lost (the reader's PUSH was full,
or a TCP link to a remote reader was cut): counted, and a resync repairs the state. The
reader's stats carry its last forwarded seq, so a lost tail is seen too. Frames received before the last resync began are
superseded by that snapshot and dropped (a backlog queued while the engine was down).
A frame of a batch that is not JSON is counted `malformed` by the handlers; the others apply.

One wake-up drains up to FRAME_BUDGET frames, then lets the loop look at its other sockets.
During a drain the effects hold their deferrable output (the calls log) and write it once
at the end (outputs.py), so a burst costs one log write, not one per call event.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import zmq

from arimonitor import jsonfast, protocol
from arimonitor.engine.handlers import Handlers

log = logging.getLogger(__name__)

_decode = jsonfast.loads
FRAME_BUDGET = 1000  # frames per wake-up before the loop looks at its other sockets
MAX_SERVERS = 64     # server names counted apart in other_servers; beyond, one "other"


def _nothing() -> None:
    return None


class Lane:
    """One server's way in: its handlers, its link monitor, its connection's sequence numbers."""

    __slots__ = (
        "epoch",
        "frames",
        "handlers",
        "last_frame_t",
        "link",
        "messages",
        "seq",
        "server",
        "superseded_before",
    )

    def __init__(self, handlers: Handlers, link: Any) -> None:
        self.server: str = handlers.state.server
        self.handlers = handlers
        self.link = link
        self.epoch: Any = None
        self.seq = 0
        # frames received before this server's last resync began are superseded by it
        self.superseded_before = 0.0
        self.messages = 0
        self.frames = 0
        self.last_frame_t = 0.0  # reader's receive time of this server's newest frame

    def view(self) -> dict[str, Any]:
        age = round(time.time() - self.last_frame_t, 3) if self.last_frame_t else None
        return {"epoch": self.epoch, "seq": self.seq, "superseded_before": self.superseded_before,
                "messages": self.messages, "frames": self.frames, "last_event_age": age}


class Intake:
    def __init__(self, handlers: Handlers, link: Any) -> None:
        first = Lane(handlers, link)
        self.first = first
        self.lanes: dict[str, Lane] = {first.server: first}
        self._fx: list[Any] = [handlers.fx]
        self.counters = handlers.counters
        self.last_frame_t = 0.0       # reader's receive time of the newest frame applied
        self.last_frame_at = 0.0      # our clock when it was applied
        self.lag = 0.0                # seconds from reader receive to applied, last frame
        self.max_lag = 0.0
        self.batch_max = 0            # most frames applied in one wake-up
        self.messages = 0             # ari + ari-batch messages received
        self.batches = 0              # of which ari-batch
        self.frames = 0               # frames in them
        # Messages of a server not configured: set aside, counted per name (at most
        # MAX_SERVERS names, the rest as "other"), logged once each.
        self.server = first.server
        self.other_servers: dict[str, int] = {}

    def add(self, handlers: Handlers, link: Any) -> Lane:
        """Another watched server's lane (engineproc/app.py, one per [ari:NAME])."""
        lane = self.lanes[handlers.state.server] = Lane(handlers, link)
        self._fx.append(handlers.fx)
        return lane

    # the first server's sequence, as before several servers (tests, `stats`)
    @property
    def epoch(self) -> Any:
        return self.first.epoch

    @property
    def seq(self) -> int:
        return self.first.seq

    @property
    def superseded_before(self) -> float:
        return self.first.superseded_before

    @superseded_before.setter
    def superseded_before(self, t: float) -> None:
        self.first.superseded_before = t

    def on_readable(self, sock: zmq.Socket) -> None:
        fxs = self._fx
        for fx in fxs:
            getattr(fx, "hold", _nothing)()
        try:
            frames, t = self._drain(sock)
        finally:
            for fx in fxs:
                getattr(fx, "release", _nothing)()
        if t:
            now = time.time()
            self.last_frame_t, self.last_frame_at = t, now
            self.lag = now - t
            self.max_lag = max(self.max_lag, self.lag)
        self.frames += frames
        self.batch_max = max(self.batch_max, frames)

    def _drain(self, sock: zmq.Socket) -> tuple[int, float]:
        recv = sock.recv_multipart
        lanes = self.lanes
        first = self.server
        counters = self.counters
        kind_ari, kind_batch = protocol.KIND_ARI, protocol.KIND_ARI_BATCH
        frames = 0
        t = 0.0
        while frames < FRAME_BUDGET:
            try:
                parts = recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            kind = parts[0]
            nparts = len(parts)
            if (kind == kind_batch and nparts >= 3) or (kind == kind_ari and nparts == 3):
                try:
                    header = _decode(parts[1])
                    bt = header["t"]
                    epoch, seq = header["epoch"], header["seq"]
                    n = header["n"] if kind == kind_batch else 1
                    if type(seq) is not int or not isinstance(bt, (float, int)):
                        raise TypeError("seq and t must be numbers")
                    if n != nparts - 2:
                        raise ValueError(f"n={n} for {nparts - 2} frame(s)")
                except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
                    self._bad(parts, f"bad ari header: {exc}")
                    continue
                lane = lanes.get(header.get("server", first))  # type: ignore[arg-type]
                if lane is None:
                    self._other_server(header.get("server"), n)
                    continue
                self.messages += 1
                lane.messages += 1
                lane.frames += n
                frames += n
                t = lane.last_frame_t = bt
                self._sequence(lane, epoch, seq, n, bt)
                if n == 1:
                    counters.bytes += len(parts[2])
                else:
                    self.batches += 1
                    counters.bytes += sum(map(len, parts[2:]))
                if bt < lane.superseded_before:
                    lane.handlers.counters.received += n
                    lane.handlers.counters.superseded += n
                elif n == 1:
                    lane.handlers.apply(parts[2], bt, (epoch, seq))
                else:
                    apply = lane.handlers.apply
                    for i in range(2, nparts):
                        apply(parts[i], bt, (epoch, seq + i - 2))
            elif kind == protocol.KIND_LINK and nparts == 2:
                notice = self._json(parts)
                lane = self._lane_of(notice)
                if lane is not None:
                    lane.link.on_link(notice)
            elif kind == protocol.KIND_READER_STATS and nparts == 2:
                stats = self._json(parts)
                lane = self._lane_of(stats)
                if lane is not None:
                    self._reader_seq(lane, stats)  # type: ignore[arg-type]
                    lane.link.on_reader_stats(stats)
            else:
                self._bad(parts, "unknown message kind or part count")
        return frames, t

    def _sequence(self, lane: Lane, epoch: Any, seq: int, n: int, t: float) -> None:
        """Frames seq .. seq+n-1 of `epoch` arrived on this server's lane: note a new
        connection or a gap."""
        if epoch != lane.epoch:
            lane.epoch, lane.seq = epoch, seq + n - 1
            lane.link.on_new_epoch(lane.server, epoch, t)
            return
        expected = lane.seq + 1
        lane.seq = seq + n - 1
        if seq > expected:
            lane.link.on_frames_lost(seq - expected, f"epoch {epoch} seq {expected}..{seq - 1}")

    def _reader_seq(self, lane: Lane, stats: dict) -> None:
        """The reader's stats, sent after the frames they count, name its last forwarded seq:
        frames past ours that never came were lost (the tail of a cut link, which no later
        frame would reveal while Asterisk is quiet)."""
        seq = stats.get("seq")
        if stats.get("epoch") == lane.epoch and type(seq) is int and seq > lane.seq:
            first = lane.seq + 1
            lane.seq = seq
            lane.link.on_frames_lost(seq - first + 1, f"epoch {lane.epoch} seq {first}..{seq}, "
                                                      "from the reader's stats")

    def _json(self, parts: list[bytes]) -> dict | None:
        try:
            body = jsonfast.loads(parts[1])
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._bad(parts, "body is not a JSON object")
            return None
        return body

    def _lane_of(self, body: dict | None) -> Lane | None:
        """The lane of a link notice or reader stats; a server not configured is set aside."""
        if body is None:
            return None
        lane = self.lanes.get(body.get("server", self.server))
        if lane is None:
            self._other_server(body.get("server"), 0)
        return lane

    def _other_server(self, server: Any, frames: int) -> None:
        # A reader of a server this engine is not configured for: its frames must not be
        # applied to any server's state (they would end or invent that server's calls).
        name = str(server)[:40]
        if name not in self.other_servers:
            if len(self.other_servers) >= MAX_SERVERS:
                name = "other"
            else:
                log.warning("messages of server %r set aside: not a configured server (%s); "
                            "counted in intake.other_servers", name, ", ".join(self.lanes))
        self.other_servers[name] = self.other_servers.get(name, 0) + frames

    def _bad(self, parts: list[bytes], why: str) -> None:
        self.counters.malformed += 1
        log.warning("malformed message on the events socket: %s: %r", why,
                    [p[:120] for p in parts[:4]])

    def last_event_age(self) -> float | None:
        return round(time.time() - self.last_frame_t, 3) if self.last_frame_t else None

    def view(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "seq": self.seq, "last_event_age": self.last_event_age(),
                "lag_ms": round(self.lag * 1000, 3), "max_lag_ms": round(self.max_lag * 1000, 3),
                "batch_max": self.batch_max, "messages": self.messages,
                "batches": self.batches, "frames": self.frames,
                "superseded_before": self.superseded_before,
                "other_servers": dict(self.other_servers),
                "servers": {name: lane.view() for name, lane in self.lanes.items()}}
