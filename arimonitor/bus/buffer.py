"""The bounded hand-over between the engine loop (put) and the bus publisher thread (take).

The loop only appends: O(1) under a lock, never a wait, whatever the broker does. When the
buffer is full the oldest event goes (one warning per episode, then the `dropped` counter):
fresh news beats stale news, and a consumer resyncs from `arictl --json` anyway.

The publisher takes a copy of the oldest events and removes them only once the broker
confirmed them (`confirmed(seq)`), so a connection lost mid-batch loses nothing that was
still within the bound: those events go again on the next connection (at least once).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BusEvent:
    seq: int           # per engine run, from 1: the consumer's order and duplicate check
    routing_key: str
    body: bytes        # the versioned JSON (message.py), encoded on the loop thread
    message_id: str    # `<run>.<seq>`: unique across engine runs


class EventBuffer:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"bus buffer limit must be >= 1, not {limit}")
        self.limit = limit
        self._events: deque[BusEvent] = deque()
        self._ready = threading.Condition(threading.Lock())
        self.appended = 0
        self.dropped = 0
        self.high_water = 0    # most events waiting at once
        self._dropping = False  # an overflow episode is on: warned once already

    def __len__(self) -> int:
        return len(self._events)

    def put(self, event: BusEvent) -> None:
        """Loop thread: append; past the bound the oldest waiting event is dropped."""
        with self._ready:
            events = self._events
            if len(events) >= self.limit:
                events.popleft()
                self.dropped += 1
                if not self._dropping:
                    self._dropping = True
                    log.warning("events bus buffer full (%d events): dropping the oldest, "
                                "counted as bus dropped (broker down or slow)", self.limit)
            events.append(event)
            self.appended += 1
            self.high_water = max(self.high_water, len(events))
            self._ready.notify()

    def peek(self, most: int, timeout: float) -> list[BusEvent]:
        """Publisher thread: up to `most` of the oldest events, left in place; waits up to
        `timeout` for one to come."""
        with self._ready:
            if not self._events:
                self._ready.wait(timeout)
            return [self._events[i] for i in range(min(most, len(self._events)))]

    def confirmed(self, seq: int) -> None:
        """Publisher thread: the broker has every event up to `seq`; they leave the buffer."""
        with self._ready:
            events = self._events
            while events and events[0].seq <= seq:
                events.popleft()
            if self._dropping and len(events) < self.limit // 2:
                self._dropping = False
                log.warning("events bus buffer draining again (%d dropped so far)", self.dropped)

    def wake(self) -> None:
        """Any thread: end a waiting peek at once (stopping)."""
        with self._ready:
            self._ready.notify_all()
