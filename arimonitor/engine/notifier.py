"""Domain events out of the engine: the PUB socket, and in-process listeners.

    notifier.subscribe("call.", fn)     # fn(topic, body) for call.ringing, call.up, call.ended
    notifier.publish("call.ended", {...})

Listeners run first, in the loop thread, in subscription order; one that raises is logged and
the others still run. PUB never blocks: a slow subscriber loses messages, the engine does not
wait (ZeroMQ drops at its high-water mark). Every PUB message carries `<run>.<seq>`
(protocol.publication): seq counts every publication, sent or dropped, so a subscriber that
must see them all (the bus process) knows when it missed some.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import zmq

from arimonitor import protocol

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]


class Notifier:
    def __init__(self, pub: zmq.Socket | None = None) -> None:
        self.pub = pub
        self._listeners: list[tuple[str, Listener]] = []
        self.published = 0
        self.dropped = 0
        self.run = str(int(time.time() * 1000))  # this engine run, in every stamp
        self.sequence = 0  # publications offered to the PUB, dropped ones included

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
            try:
                self.pub.send_multipart(protocol.publication(topic, body, f"{self.run}.{self.sequence}"),
                                        zmq.NOBLOCK)
                self.published += 1
            except zmq.Again:
                self.dropped += 1
