"""Outcome events from the engine (ZeroMQ SUB `c2c.`) into the ledger and a queue.

A thread of its own, so outcomes are written to the ledger even while RabbitMQ is away;
the consumer session publishes what is queued, and after a reconnect everything the ledger
holds as final-but-unsent.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from typing import Any

import zmq

from arimonitor import protocol
from arimonitor.clicktocall import reasons
from arimonitor.clicktocall.ledger import Final, Ledger

TOPIC = f"{protocol.TOPIC_C2C}."


class OutcomeListener:
    def __init__(self, address: str, ledger: Ledger, log: logging.Logger,
                 context: zmq.Context | None = None, max_queued: int = 10000) -> None:
        self.address = address
        self._ledger = ledger
        self._log = log
        self._context = context or zmq.Context.instance()
        # a Final (stored; the session sends what is unsent) or a progress event of ours
        self.queue: queue.Queue[Final | dict[str, Any]] = queue.Queue(max_queued)
        self._stop = threading.Event()
        self.unstored = 0  # outcomes the ledger could not take (full disk), caught up later
        self._thread = threading.Thread(target=self._run, name="c2c-outcomes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        sub = self._context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, TOPIC.encode())
        sub.connect(self.address)
        try:
            while not self._stop.is_set():
                if not sub.poll(200):
                    continue
                parts = sub.recv_multipart()
                try:
                    self.handle(parts[0].decode(), protocol.loads(parts[-1]))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    self._log.warning("bad c2c publication %r: %s", parts[0][:40], exc)
                except sqlite3.Error as exc:
                    # A full disk: the request stays open in the ledger, so the catch-up asks
                    # the engine for its final again (report.py). Logged once per episode.
                    self.unstored += 1
                    if self.unstored == 1 or self.unstored % 1000 == 0:
                        self._log.error("c2c outcome not stored (%s); %d so far, the catch-up "
                                        "asks again", exc, self.unstored)
        finally:
            sub.close()

    def handle(self, topic: str, body: dict[str, Any]) -> None:
        request_id = str(body["request_id"])
        event = topic[len(TOPIC):] if topic.startswith(TOPIC) else str(body.get("event"))
        if event == reasons.EV_FINAL:
            final = self._ledger.finish(request_id, body)
            # None: not placed by this consumer (another machine's, or v2.7's)
            if final is not None and (final.routes or not final.results_sent):
                self._put(final)
        elif event == reasons.EV_ACCEPTED:
            # The consumer published `accepted` when Asterisk took the originate: once per event.
            self._ledger.progress(request_id, event)
        else:
            client = self._ledger.progress(request_id, event)
            if client is not None:
                # The engine knows the client only from StasisStart on; the ledger always did.
                self._put({**body, "client": body.get("client") or client})

    def _put(self, item: Final | dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            # Finals are safe in the ledger (the sweep sends them); progress is not final.
            rid = item.request_id if isinstance(item, Final) else item.get("request_id")
            self._log.warning("outcome queue full; %s waits in the ledger", rid)
