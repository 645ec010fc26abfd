"""Domain events out of the engine: the PUB socket, and in-process listeners.

    notifier.subscribe("call.", fn)     # fn(topic, body) for call.ringing, call.up, call.ended
    notifier.publish("call.ended", {...})

Listeners run first, in the loop thread, in subscription order; one that raises is logged and
the others still run. PUB never blocks: a slow subscriber loses messages, the engine does not
wait (ZeroMQ drops at its high-water mark).
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
            try:
                self.pub.send_multipart(protocol.publication(topic, body), zmq.NOBLOCK)
                self.published += 1
            except zmq.Again:
                self.dropped += 1
