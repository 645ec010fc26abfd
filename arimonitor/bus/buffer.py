"""The bounded hand-over between the feed (put) and the bus publisher thread (take).

The feed only appends: O(1) under a lock, never a wait, whatever the broker does. When the
buffer is full the oldest event goes (one warning per episode, then the `dropped` counter):
fresh news beats stale news, and a consumer resyncs from `arictl --json` anyway.

The publisher reads the events without taking them (`after(seq)`: those it has not sent on
this connection yet) and removes them only once the broker confirmed them (`confirmed(seq)`),
so a connection lost mid-stream loses nothing that was still within the bound: the
unconfirmed ones go again on the next connection (at least once).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BusEvent:
    seq: int           # per bus process run, from 1: the consumer's order and duplicate check
    routing_key: str
    body: bytes        # the versioned JSON (message.py), encoded by the feed
    message_id: str    # the engine's stamp `<engine run>.<seq>`: the same when sent again


class EventBuffer:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"bus buffer limit must be >= 1, not {limit}")
        self.limit = limit
        self._events: deque[BusEvent] = deque()
        self._lock = threading.Lock()
        self.appended = 0
        self.dropped = 0
        self.high_water = 0    # most events waiting at once
        self._dropping = False  # an overflow episode is on: warned once already
        self._on_put: Callable[[], None] | None = None  # the idle publisher's wake-up
        self.last_confirmed = ""  # message_id of the newest event the broker has: the position

    def __len__(self) -> int:
        return len(self._events)

    def put(self, event: BusEvent) -> None:
        """Feed: append; past the bound the oldest waiting event is dropped."""
        with self._lock:
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
            wake, self._on_put = self._on_put, None
        if wake is not None:
            wake()  # once per idle spell, not per event: the publisher drains what came

    def wake_on_put(self, seq: int, fn: Callable[[], None]) -> bool:
        """Publisher thread, idle: True if events newer than `seq` already wait (go on now);
        else fn() will be called, once, by the next put (from the feed's thread)."""
        with self._lock:
            if self._events and self._events[-1].seq > seq:
                return True
            self._on_put = fn
            return False

    def stop_waking(self) -> None:
        """Publisher thread: its session ended; no put may call into it any more."""
        with self._lock:
            self._on_put = None

    def after(self, seq: int, most: int) -> list[BusEvent]:
        """Publisher thread, without waiting: up to `most` waiting events newer than `seq`
        (the ones not yet sent on this connection), oldest first."""
        with self._lock:
            events = self._events
            if not events:
                return []
            # seqs in the buffer are consecutive (appended +1, removed only at the head)
            start = max(0, seq + 1 - events[0].seq)
            return [events[i] for i in range(start, min(len(events), start + most))]

    def confirmed(self, seq: int) -> None:
        """Publisher thread: the broker has every event up to `seq`; they leave the buffer."""
        with self._lock:
            events = self._events
            while events and events[0].seq <= seq:
                self.last_confirmed = events.popleft().message_id
            if self._dropping and len(events) < self.limit // 2:
                self._dropping = False
                log.warning("events bus buffer draining again (%d dropped so far)", self.dropped)
