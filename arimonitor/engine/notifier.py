"""Domain events out of the engine: the PUB socket, and in-process listeners.

    notifier.subscribe("call.", fn)     # fn(topic, body) for call.ringing, call.up, call.ended
    notifier.publish("call.ended", {...})

Listeners run first, in the loop thread, in subscription order; one that raises is logged and
the others still run. PUB never blocks: a slow subscriber loses messages, the engine does not
wait (ZeroMQ drops at its high-water mark). Every PUB message carries `<run>.<seq>`
(protocol.publication): seq counts every publication, sent or dropped, so a subscriber that
must see them all (the bus process) knows when it missed some. The last RECENT publications of
the bus topics are kept, so such a subscriber can fetch what it missed (`since`, the control
command `_publications`): the ones sent before it connected (ZeroMQ's slow joiner), while it
was restarting, or dropped at the high-water mark.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq

from arimonitor import jsonfast, protocol

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]

RECENT = 20_000  # bus-topic publications kept for a catch-up: about 10 MB at most
KEPT = tuple(f"{topic}." for topic in protocol.BUS_TOPICS)


class Notifier:
    def __init__(self, pub: zmq.Socket | None = None, recent: int = RECENT) -> None:
        self.pub = pub
        self._listeners: list[tuple[str, Listener]] = []
        self.published = 0
        self.dropped = 0
        self.run = str(int(time.time() * 1000))  # this engine run, in every stamp
        self.sequence = 0  # publications offered to the PUB, dropped ones included
        self.recent: deque[tuple[int, str, bytes]] = deque(maxlen=recent)  # (seq, topic, body)
        self.forgotten = 0  # seq of the newest kept publication pushed out by newer ones

    def subscribe(self, prefix: str, fn: Listener) -> Callable[[], None]:
        """fn(topic, body) for every topic starting with `prefix`; returns an unsubscribe."""
        entry = (prefix, fn)
        self._listeners.append(entry)
        return lambda: self._listeners.remove(entry) if entry in self._listeners else None

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        body.setdefault("t", time.time())
        for prefix, fn in list(self._listeners):
            if topic.startswith(prefix):
                try:
                    fn(topic, body)
                except Exception:
                    log.exception("listener %r of %s failed", fn, topic)
        if self.pub is not None:
            self.sequence += 1
            frames = protocol.publication(topic, jsonfast.dumps(body), f"{self.run}.{self.sequence}")
            if topic.startswith(KEPT):
                if len(self.recent) == self.recent.maxlen:
                    self.forgotten = self.recent[0][0]
                self.recent.append((self.sequence, topic, frames[-1]))
            try:
                self.pub.send_multipart(frames, zmq.NOBLOCK)
                self.published += 1
            except zmq.Again:
                self.dropped += 1

    def since(self, run: str, after: int, most: int) -> dict[str, Any]:
        """A catch-up: the kept publications of this run after seq `after`, oldest first, at most
        `most`. Asked about another run (the engine restarted since), it answers from the start of
        this one. Seqs of other topics (progress, control) are never kept, so kept seqs skip them;
        `forgotten` is the newest seq pushed out of the ring: those up to it are gone for good."""
        if run != self.run:
            after = 0
        recent = self.recent
        start = bisect.bisect_right(recent, after, key=lambda kept: kept[0])
        end = min(len(recent), start + most)
        return {"run": self.run, "after": after, "last": self.sequence, "forgotten": self.forgotten,
                "more": end < len(recent),
                "publications": [[seq, topic, body.decode("utf-8")]
                                 for seq, topic, body in (recent[i] for i in range(start, end))]}
