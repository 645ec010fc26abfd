"""The bus publisher: its own thread and its own pika connection, draining the EventBuffer.

It runs in the bus process (process.py), fed by the engine's PUB (feed.py), so pika's framing
costs the engine nothing. pika's connection is not thread-safe, so this thread alone ever
touches it; the feed's only call into it is the wake-up of an idle publisher.

Every message is persistent (delivery_mode 2) on a durable topic exchange, and the channel is
in confirm mode: an event leaves the buffer only once the broker acknowledged it. Confirms are
asynchronous (pika's SelectConnection on this thread's own ioloop): up to WINDOW messages are
out unconfirmed at once, so the rate is not one round trip per message (the blocking
adapter's synchronous confirms managed ~2,800/s). A lost connection (broker down,
`rabbitmqctl close_connection`, a nack) ends the session; the thread waits (`Backoff`) and
connects again, and the events still in the buffer (unconfirmed ones first) go then.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions

from arimonitor.backoff import Backoff
from arimonitor.bus.buffer import BusEvent, EventBuffer

log = logging.getLogger(__name__)

WINDOW = 2000        # messages published and not yet confirmed, at most
BATCH = 500          # messages published per ioloop turn (lets acks and heartbeats in between)


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


def parameters(address: BrokerAddress, timeout: float = 5.0) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host=address.host, port=address.port, virtual_host=address.vhost,
        credentials=pika.PlainCredentials(address.user, address.password),
        heartbeat=30, blocked_connection_timeout=30, socket_timeout=timeout,
        stack_timeout=timeout + 5, connection_attempts=1,
        client_properties={"connection_name": f"arimonitor-bus-{os.getpid()}"})


class BusPublisher:
    def __init__(self, buffer: EventBuffer, address: BrokerAddress, exchange: str, *,
                 backoff: Backoff | None = None, window: int = WINDOW) -> None:
        self.buffer = buffer
        self.address = address
        self.exchange = exchange
        self.backoff = backoff or Backoff(0.5, 30.0)
        self.window = window
        self.published = 0     # messages handed to the broker
        self.confirmed = 0     # ... and acknowledged by it (they left the buffer)
        self.failures = 0      # connections that failed or ended badly
        self.connected_since: float | None = None
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: _Session | None = None
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
        session = self._session
        if session is not None:
            session.stop_threadsafe()
        if self._thread is not None:
            self._thread.join(timeout=3)  # a daemon thread: a hung close never holds the exit

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
            self._session = _Session(self)
            if self._stop.is_set():  # stop() came between the loop's check and the line above
                break
            try:
                reason = self._session.run()
            except (pika.exceptions.AMQPError, OSError) as exc:
                reason = f"{type(exc).__name__} {exc}".strip()
            finally:
                self.connected_since = None
                self._session = None
            if not self._stop.is_set():
                self._failed(reason)

    def connected(self) -> None:
        self.connected_since = time.time()
        log.info("events bus: connected to RabbitMQ %s, exchange %s (%d event(s) waiting)",
                 self.address, self.exchange, len(self.buffer))
        self.backoff.reset()
        self._down_logged = False

    def _failed(self, reason: str) -> None:
        self.failures += 1
        self.last_error = reason[:200]
        if not self._down_logged:
            # once per episode; `stats` counts the rest
            log.warning("events bus: RabbitMQ %s: %s; events wait in the buffer (up to %d)",
                        self.address, reason, self.buffer.limit)
            self._down_logged = True
        self._stop.wait(self.backoff.next())


class _Session:
    """One connection's lifetime, on the publisher thread's own ioloop; `run()` returns why it
    ended. Sends what the buffer holds beyond `sent`, at most `window` unconfirmed."""

    def __init__(self, publisher: BusPublisher) -> None:
        self.pub = publisher
        self.buffer = publisher.buffer
        self.channel: Any = None
        self.sent = 0                          # newest seq published on this connection
        # delivery tag -> seq, both rising in publishing order: a confirm pops from the front
        # (O(confirmed), never a scan of the whole window per confirm)
        self.unconfirmed: OrderedDict[int, int] = OrderedDict()
        self.next_tag = 1
        self.reason = ""                       # why it ended: the first cause given
        self.connection = pika.SelectConnection(
            parameters(publisher.address), on_open_callback=self._opened,
            on_open_error_callback=lambda _c, err: self._end(f"cannot connect: {_why(err)}"),
            on_close_callback=lambda _c, why: self._end(f"connection lost: {_why(why)}"))

    def run(self) -> str:
        try:
            self.connection.ioloop.start()
        finally:
            self.buffer.stop_waking()
            self.connection.ioloop.close()  # its wake-up pipe: a reconnect every 30 s for days
        return self.reason or "closed"

    def stop_threadsafe(self) -> None:
        self.connection.ioloop.add_callback_threadsafe(lambda: self._close("stopping"))

    def _end(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.connection.ioloop.stop()

    def _close(self, reason: str) -> None:
        self.reason = self.reason or reason
        if self.connection.is_open:
            self.connection.close()  # on_close_callback stops the ioloop
        elif not self.connection.is_closing:
            self.connection.ioloop.stop()

    def _opened(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._channel_open)

    def _channel_open(self, channel: Any) -> None:
        self.channel = channel
        channel.add_on_close_callback(lambda _ch, why: self._close(f"channel closed: {_why(why)}"))
        channel.exchange_declare(self.pub.exchange, exchange_type="topic", durable=True,
                                 callback=lambda _frame: channel.confirm_delivery(
                                     self._on_confirm, callback=self._confirming))

    def _confirming(self, _frame: Any) -> None:
        # sent = 0: everything still in the buffer goes, the unconfirmed of a lost session first
        self.pub.connected()
        self._pump()

    def _pump(self) -> None:
        """Publish what waits, within the window; idle: the next put wakes us (once)."""
        if not self.connection.is_open:
            return
        room = min(BATCH, self.pub.window - len(self.unconfirmed))
        if room <= 0:
            return  # the next confirm pumps again
        events = self.buffer.after(self.sent, room)
        for event in events:
            self.channel.basic_publish(self.pub.exchange, event.routing_key, event.body,
                                       _properties(event))
            self.unconfirmed[self.next_tag] = event.seq
            self.next_tag += 1
            self.sent = event.seq
        self.pub.published += len(events)
        if len(events) == room:
            if len(self.unconfirmed) < self.pub.window:
                self.connection.ioloop.call_later(0, self._pump)  # more: after the acks
            # else the window is full: a confirm pumps again
        elif self.buffer.wake_on_put(self.sent, self._wake):
            self.connection.ioloop.call_later(0, self._pump)

    def _wake(self) -> None:
        """The feed's thread (its put): hand the pump to the publisher's ioloop."""
        try:
            self.connection.ioloop.add_callback_threadsafe(self._pump)
        except Exception:  # the session just ended; the next one reads the buffer
            log.debug("events bus: wake-up after the session ended", exc_info=True)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            self._close("the broker refused (nack) a message")  # sent again on reconnect
            return
        tag = method.delivery_tag
        unconfirmed = self.unconfirmed
        if method.multiple:
            while unconfirmed and next(iter(unconfirmed)) <= tag:
                unconfirmed.popitem(last=False)
                self.pub.confirmed += 1
        elif unconfirmed.pop(tag, None) is not None:
            self.pub.confirmed += 1
        # events leave the buffer in order: up to the oldest one still unconfirmed
        upto = next(iter(unconfirmed.values())) - 1 if unconfirmed else self.sent
        self.buffer.confirmed(upto)
        # Publish in bulk: once a batch fits in the window (or all is confirmed), not one message
        # per ack; one by one it was four socket writes a message (bench/bench_engine.py --only bus).
        if len(unconfirmed) <= self.pub.window - BATCH or not unconfirmed:
            self._pump()


def _why(reason: Any) -> str:
    return f"{type(reason).__name__} {reason}".strip()


def _properties(event: BusEvent) -> pika.BasicProperties:
    return pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                message_id=event.message_id, timestamp=int(time.time()))
