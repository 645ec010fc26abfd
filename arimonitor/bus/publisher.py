"""The bus publisher: its own thread and its own pika connection, draining the EventBuffer.

Why a thread in the engine process (docs/ARCHITECTURE.md, "events bus"): the events are
already in the engine's memory, so a thread costs one lock per event, where a separate
program would need a second hop (a SUB on the PUB, which drops silently at its high-water
mark) and its own counters reported back. pika's BlockingConnection is not thread-safe, so
this thread alone ever touches it.

Every message is persistent (delivery_mode 2) on a durable topic exchange, and the channel is
in confirm mode: an event leaves the buffer only once the broker acknowledged it. A lost
connection (broker down, `rabbitmqctl close_connection`, a nack) ends the session; the thread
waits (`Backoff`) and connects again, and the events still in the buffer go then.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions

from arimonitor.backoff import Backoff
from arimonitor.bus.buffer import BusEvent, EventBuffer

log = logging.getLogger(__name__)

BATCH = 200          # events taken from the buffer per round
IDLE_WAIT = 0.5      # seconds a quiet round waits for an event (then services heartbeats)


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    vhost: str
    user: str
    password: str

    def __str__(self) -> str:  # for logs: never the password
        return f"{self.user}@{self.host}:{self.port}{self.vhost}"

    def __repr__(self) -> str:
        return f"BrokerAddress({self})"


def connect(address: BrokerAddress, timeout: float = 5.0) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        host=address.host, port=address.port, virtual_host=address.vhost,
        credentials=pika.PlainCredentials(address.user, address.password),
        heartbeat=30, blocked_connection_timeout=30, socket_timeout=timeout,
        stack_timeout=timeout + 5, connection_attempts=1,
        client_properties={"connection_name": f"arimonitor-bus-{os.getpid()}"}))


class BusPublisher:
    def __init__(self, buffer: EventBuffer, address: BrokerAddress, exchange: str, *,
                 backoff: Backoff | None = None,
                 connector: Callable[[BrokerAddress], Any] = connect) -> None:
        self.buffer = buffer
        self.address = address
        self.exchange = exchange
        self.backoff = backoff or Backoff(0.5, 30.0)
        self.connector = connector
        self.published = 0     # messages handed to the broker
        self.confirmed = 0     # ... and acknowledged by it (they left the buffer)
        self.failures = 0      # connections that failed or ended badly
        self.connected_since: float | None = None
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._down_logged = False

    # ---- life ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="bus-publisher", daemon=True)
        self._thread.start()

    def stop(self, drain: float = 2.0) -> None:
        """Give waiting events up to `drain` seconds to go, then end the thread."""
        deadline = time.monotonic() + drain
        while len(self.buffer) and self.connected_since is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self.buffer.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def view(self) -> dict[str, Any]:
        buffer = self.buffer
        return {"exchange": self.exchange, "broker": str(self.address),
                "connected": self.connected_since is not None,
                "connected_since": self.connected_since, "queued": len(buffer),
                "limit": buffer.limit, "high_water": buffer.high_water,
                "appended": buffer.appended, "published": self.published,
                "confirmed": self.confirmed, "dropped": buffer.dropped,
                "failures": self.failures, "last_error": self.last_error}

    # ---- the thread ---------------------------------------------------------------------------

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                connection = self.connector(self.address)
            except (pika.exceptions.AMQPError, OSError) as exc:
                self._failed(f"cannot connect: {type(exc).__name__} {exc}".strip())
                continue
            try:
                self._session(connection)
            except (pika.exceptions.AMQPError, OSError) as exc:
                self._failed(f"connection lost: {type(exc).__name__} {exc}".strip())
            finally:
                self.connected_since = None
                _close_quietly(connection)

    def _session(self, connection: Any) -> None:
        channel = connection.channel()
        channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        channel.confirm_delivery()
        self.connected_since = time.time()
        log.info("events bus: connected to RabbitMQ %s, exchange %s (%d event(s) waiting)",
                 self.address, self.exchange, len(self.buffer))
        self.backoff.reset()
        self._down_logged = False
        while not self._stop.is_set():
            batch = self.buffer.peek(BATCH, IDLE_WAIT)
            if not batch:
                connection.process_data_events(0)  # heartbeats, a close from the broker
                continue
            for event in batch:
                # confirm mode: returns once the broker took it; a nack raises NackError
                channel.basic_publish(self.exchange, event.routing_key, event.body, _properties(event))
                self.published += 1
                self.buffer.confirmed(event.seq)
                self.confirmed += 1

    def _failed(self, reason: str) -> None:
        self.failures += 1
        self.last_error = reason[:200]
        if not self._down_logged:
            # once per episode; `stats` counts the rest
            log.warning("events bus: RabbitMQ %s: %s; events wait in the buffer (up to %d)",
                        self.address, reason, self.buffer.limit)
            self._down_logged = True
        self._stop.wait(self.backoff.next())


def _properties(event: BusEvent) -> pika.BasicProperties:
    return pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                message_id=event.message_id, timestamp=int(time.time()))


def _close_quietly(connection: Any) -> None:
    try:
        if connection.is_open:
            connection.close()
    except (pika.exceptions.AMQPError, OSError):
        pass
