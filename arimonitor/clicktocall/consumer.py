"""One RabbitMQ connection's lifetime: consume, place in worker threads, settle, drain.

The connection thread owns every pika call. A message is parsed on that thread (cheap, pure);
a valid request goes to a small thread pool (blocking ARI HTTP), whose Decision comes back via
`connection.add_callback_threadsafe` (pika's documented way, examples/basic_consumer_threaded.py)
and is settled here: publish what must be published (publisher confirms), then ack.

Nothing is acked before its fate is durable: an accepted originate (Asterisk has the call), a
refusal (the dead-letter copy confirmed by the broker), a retry (the retry-queue copy confirmed).
A message whose settle never runs (connection lost, process killed) stays unacked and comes
back; the ledger and the deterministic channel id make that harmless.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import pika
import pika.exceptions

from arimonitor.clicktocall import broker, deadletters, outcomes, reasons
from arimonitor.clicktocall import placer as P
from arimonitor.clicktocall.ledger import KEEP_FINAL, Final, Ledger, Route
from arimonitor.clicktocall.listener import OutcomeListener
from arimonitor.clicktocall.request import (
    MAX_BODY,
    ClickToCallRequest,
    Limits,
    Refusal,
    parse_request,
)

# Test-only switch (documented in docs/ARCHITECTURE.md): delay the ack of an accepted request
# by this many seconds, so a test can kill -9 the consumer between originate and ack.
TEST_ACK_DELAY_ENV = "ARIMONITOR_C2C_TEST_ACK_DELAY"
UNSENT_CHECK = 10.0      # seconds between sweeps of final outcomes the broker never confirmed
DRAIN_TIMEOUT = 10.0     # longest wait for in-flight originates on SIGTERM
PRUNE_EVERY = 3600.0     # seconds between deletions of old ledger rows (kept for days)
CHECKPOINT_EVERY = 60.0  # seconds between ledger WAL checkpoints (its size stays bounded)
DEAD_TRIM_EVERY = 30.0   # seconds between trims of <queue>.dead (deadletters.py)


@dataclass
class ConsumerSettings:
    results_exchange: str
    prefetch: int = 50
    workers: int = 8
    retry_delay: float = 5.0
    max_attempts: int = 20     # attempts (the first included) before retries_exhausted
    max_age: float = 600.0     # seconds since the first failed attempt, idem
    failback_check: float = 30.0  # seconds between checks that the first server is back
    dead_letter_max: int = 10000      # messages kept in <queue>.dead
    dead_letter_max_age: float = 7 * 86400.0  # seconds a dead letter is kept
    limits: Limits = field(default_factory=Limits)
    test_ack_delay: float = 0.0

    @classmethod
    def from_env(cls, **kw) -> ConsumerSettings:
        delay = float(os.environ.get(TEST_ACK_DELAY_ENV, "0") or 0)
        return cls(test_ack_delay=delay, **kw)


@dataclass
class _Delivery:
    tag: int
    properties: pika.BasicProperties
    body: bytes
    received: float
    future: Future | None = None
    redelivered: bool = False


class ConsumerSession:
    """Implements broker.Session; one instance serves every connection in turn."""

    def __init__(self, servers: Sequence[broker.Server], settings: ConsumerSettings,
                 placer: P.Placer, ledger: Ledger, listener: OutcomeListener | None,
                 stopper: broker.Stopping, log: logging.Logger,
                 connect: broker.Connect = broker.default_connect) -> None:
        self.servers = servers
        self.settings = settings
        self.placer = placer
        self.ledger = ledger
        self.listener = listener
        self.stopper = stopper
        self.log = log
        self._connect = connect
        self.executor = ThreadPoolExecutor(max(1, min(settings.workers, settings.prefetch)),
                                           thread_name_prefix="c2c-place")
        self.consumed = False
        self.counters = {"accepted": 0, "duplicate": 0, "refused": 0, "retried": 0,
                         "exhausted": 0, "replied": 0, "dead_dropped": 0, "deferred": 0,
                         **getattr(placer, "counters", {})}
        if hasattr(placer, "counters"):
            placer.counters = self.counters  # one set for `status`; the placer counts in it too
        self._deferring: str | None = None  # why requests are deferred (logged once per episode)
        self._generation = 0
        self._inflight: dict[int, _Delivery] = {}
        self._next_prune = time.monotonic() + PRUNE_EVERY  # the ledger pruned itself at start
        self._next_checkpoint = time.monotonic() + CHECKPOINT_EVERY

    # ---- one connection -----------------------------------------------------------------------

    def run(self, connection: pika.BlockingConnection, server_index: int) -> broker.SessionEnd:
        self._generation += 1
        self.consumed = False
        self._inflight.clear()
        self.connection = connection
        topology = broker.Topology.for_queue(self.servers[server_index].queue,
                                             self.settings.results_exchange)
        self.topology = topology
        self.channel = connection.channel()
        self._declare(topology)
        self.channel.basic_qos(prefetch_count=self.settings.prefetch)
        self.confirmed = connection.channel()
        self.confirmed.confirm_delivery()
        self.events = connection.channel()  # progress events: fire and forget
        tag = self.channel.basic_consume(topology.queue, self._on_message, auto_ack=False)
        self.consumed = True
        self.log.info("consuming %s (prefetch %d)", topology.queue, self.settings.prefetch)
        self._send_unsent()
        probe: _Probe | None = None
        next_probe = time.monotonic() + self.settings.failback_check
        next_unsent = time.monotonic() + UNSENT_CHECK
        next_trim = time.monotonic()
        reason = "stopping"
        while not self.stopper.stopping:
            connection.process_data_events(time_limit=0.05)
            self._publish_queued_outcomes()
            now = time.monotonic()
            if now >= next_unsent:
                next_unsent = now + UNSENT_CHECK
                self._send_unsent()
            self._maybe_prune(now)
            if now >= next_trim:
                next_trim = now + DEAD_TRIM_EVERY
                self._trim_dead_letters()
            if server_index > 0 and probe is None and now >= next_probe:
                probe = _Probe(self.servers, self._connect)
            if probe is not None and probe.done.is_set():
                if probe.back:
                    reason = f"first server {broker.describe(self.servers[0])} is back"
                    break
                probe, next_probe = None, now + self.settings.failback_check
        self._drain(tag)
        return broker.SessionEnd(True, reason)

    def _declare(self, topology: broker.Topology) -> None:
        try:
            broker.declare(self.channel, topology)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 406:
                raise
            # The queue exists with other arguments (made by another tool): use it as it is.
            self.log.warning("queue %s exists with other settings (%s); using it as is",
                             topology.queue, exc.reply_text)
            self.channel = self.connection.channel()
            self.channel.queue_declare(topology.queue, passive=True)

    def _drain(self, consumer_tag: str) -> None:
        """Stop consuming, finish the originates in flight, nack (requeue) what never started."""
        try:
            self.channel.basic_cancel(consumer_tag)
        except pika.exceptions.AMQPError:
            return  # the connection is gone: the broker requeues everything unacked itself
        requeued = 0
        for delivery in list(self._inflight.values()):
            if delivery.future is not None and delivery.future.cancel():
                self._inflight.pop(delivery.tag, None)
                self.channel.basic_nack(delivery.tag, requeue=True)
                requeued += 1
        running = len(self._inflight)
        self.log.info("draining: %d never started, requeued; waiting for %d in flight",
                      requeued, running)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while self._inflight and time.monotonic() < deadline:
            self.connection.process_data_events(time_limit=0.05)
        if self._inflight:
            self.log.warning("drain: %d still in flight after %.0f s, requeued (a late "
                             "originate is recognised as a duplicate)", len(self._inflight),
                             DRAIN_TIMEOUT)
        for tag in list(self._inflight):
            self.channel.basic_nack(tag, requeue=True)
        self._inflight.clear()
        self._publish_queued_outcomes()

    # ---- messages -----------------------------------------------------------------------------

    def _on_message(self, channel, method, properties: pika.BasicProperties, body: bytes) -> None:
        delivery = _Delivery(method.delivery_tag, properties, body, time.monotonic(),
                             redelivered=bool(method.redelivered))
        parsed = parse_request(body, properties.reply_to, properties.correlation_id,
                               self.settings.limits)
        stamp = properties.timestamp
        if not isinstance(parsed, Refusal):
            parsed = dataclasses.replace(
                parsed, redelivered=bool(method.redelivered), publisher=properties.user_id,
                queued_at=float(stamp) if isinstance(stamp, int) and stamp > 0 else None)
        if isinstance(parsed, Refusal):
            self._refuse(delivery, parsed, None)
            return
        self._inflight[delivery.tag] = delivery
        generation = self._generation
        delivery.future = self.executor.submit(self._place, parsed)
        delivery.future.add_done_callback(functools.partial(self._decided, generation, delivery))

    def _place(self, req: ClickToCallRequest) -> P.Decision:
        try:
            return self.placer.place(req)
        except Exception:  # a bug must not lose the message: it goes to the dead letters
            self.log.exception("placing %s failed", req.request_id)
            return P.Decision(P.REFUSED, req, Refusal.of(reasons.INTERNAL_ERROR))

    def _decided(self, generation: int, delivery: _Delivery, future: Future) -> None:
        """Worker thread: hand the decision to the connection thread."""
        if future.cancelled():
            return
        settle = functools.partial(self._settle, generation, delivery, future.result())
        try:
            self.connection.add_callback_threadsafe(settle)
        except (pika.exceptions.AMQPError, AttributeError) as exc:
            # Connection gone: the message was never acked and will be redelivered.
            self.log.info("cannot settle %s (%s); it will be redelivered",
                          delivery.tag, type(exc).__name__)

    def _settle(self, generation: int, delivery: _Delivery, decision: P.Decision) -> None:
        if generation != self._generation or not self.channel.is_open:
            return  # a delivery of a channel that is gone: the broker redelivers it
        self._inflight.pop(delivery.tag, None)
        req = decision.request
        if decision.kind != P.DEFER and self._deferring is not None:
            self.log.warning("c2c: the ledger can be written again (%d deferred so far)",
                             self.counters["deferred"])
            self._deferring = None
        if decision.kind == P.ACCEPTED:
            self.counters["accepted"] += 1
            self.log.info("c2c %s accepted: %s -> %s (client %s)%s", req.request_id, req.origin,
                          req.destination, req.client,
                          f" on {decision.server}" if decision.server else "")
            self._publish_event(outcomes.outcome(req.request_id, req.client, reasons.EV_ACCEPTED,
                                                 origin=req.origin, destination=req.destination,
                                                 server=decision.server or None))
            self._ack(delivery.tag, self.settings.test_ack_delay)
        elif decision.kind == P.DUPLICATE:
            self.counters["duplicate"] += 1
            self.log.info("c2c %s is a duplicate (already placed): acked, no second call",
                          req.request_id)
            self._ack(delivery.tag)
            self._send_final(req.request_id)
        elif decision.kind == P.RETRY:
            self._retry(delivery, decision)
        elif decision.kind == P.DEFER:
            self._defer(delivery, decision.error)
        else:
            self._refuse(delivery, decision.refusal or Refusal.of(reasons.INTERNAL_ERROR), req)

    def _defer(self, delivery: _Delivery, why: str) -> None:
        """Not placed, not judged (the ledger cannot be written): back to the queue after
        retry_delay, as a nack, so nothing is lost and no attempt is counted."""
        self.counters["deferred"] += 1
        if self._deferring is None:
            self.log.error("c2c: %s; requests go back to the queue until it can be written", why)
        self._deferring = why
        channel = self.channel
        self.connection.call_later(self.settings.retry_delay,
                                   lambda: channel.is_open and channel.basic_nack(delivery.tag,
                                                                                  requeue=True))

    def _ack(self, tag: int, delay: float = 0.0) -> None:
        if delay > 0:
            channel = self.channel
            self.connection.call_later(delay, lambda: channel.is_open and channel.basic_ack(tag))
        else:
            self.channel.basic_ack(tag)

    def _refuse(self, delivery: _Delivery, refusal: Refusal, req: ClickToCallRequest | None) -> None:
        request_id = req.request_id if req else _request_id_of(delivery.body)
        client = req.client if req else ""
        route = Route(request_id or "", client, delivery.properties.reply_to,
                      delivery.properties.correlation_id)
        if delivery.redelivered and request_id and self.ledger.answered(route):
            # Judged and answered before a crash took the ack: one reply per message.
            self.log.info("c2c %s: redelivered after its reply went; acked", request_id)
            self.channel.basic_ack(delivery.tag)
            return
        body = outcomes.refusal_outcome(request_id or "", client, refusal, req)
        # Another client's request owns that id in the ledger: reply, but never touch its row.
        recorded = req is not None and refusal.reason != reasons.DUPLICATE_REQUEST_ID
        final = None
        if recorded:
            try:  # first the ledger: a verdict it cannot keep is not given (full disk)
                final = self.ledger.finish(request_id, body, route)
            except sqlite3.Error as exc:
                self._defer(delivery, f"ledger not writable: {exc}")
                return
        if final is None:
            final = Final(request_id or "", client, body, (route,) if route.reply_to else (),
                          results_sent=False)
        self.counters["exhausted" if refusal.reason == reasons.RETRIES_EXHAUSTED
                      else "refused"] += 1
        props = outcomes.dead_letter_properties(delivery.properties, refusal)
        try:
            self.confirmed.basic_publish(self.topology.dead_letter_exchange, self.topology.queue,
                                         delivery.body, props)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            self.log.error("dead letter not confirmed (%s); message requeued", exc)
            self.channel.basic_nack(delivery.tag, requeue=True)
            return
        self.log.info("c2c %s refused: %s", request_id or "(no id)", refusal.text)
        self.channel.basic_ack(delivery.tag)
        self._publish_final(final, recorded=recorded)

    def _retry(self, delivery: _Delivery, decision: P.Decision) -> None:
        attempts, first = outcomes.retry_state(delivery.properties)
        age = time.time() - first
        if attempts >= self.settings.max_attempts or age >= self.settings.max_age:
            self.log.warning("c2c %s: %s; giving up after %d attempt(s) in %.0f s",
                             decision.request.request_id, decision.error, attempts, age)
            self._refuse(delivery, Refusal.of(
                reasons.RETRIES_EXHAUSTED,
                f"{attempts} attempt(s) in {age:.0f} s, last: {decision.error}"[:200]),
                decision.request)
            return
        props, attempts = outcomes.retry_properties(delivery.properties, decision.error,
                                                    self.settings.retry_delay)
        try:
            self.confirmed.basic_publish("", self.topology.retry_queue, delivery.body, props)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            self.log.error("retry copy not confirmed (%s); message requeued", exc)
            self.channel.basic_nack(delivery.tag, requeue=True)
            return
        self.channel.basic_ack(delivery.tag)
        self.counters["retried"] += 1
        log = self.log.warning if attempts == 1 or attempts % 20 == 0 else self.log.debug
        log("c2c %s: %s; retry %d in %.1f s", decision.request.request_id, decision.error,
            attempts, self.settings.retry_delay)

    # ---- outcomes -----------------------------------------------------------------------------

    def _publish_final(self, final: Final, recorded: bool = True) -> None:
        """The final outcome to each request message's reply_to (its own correlation_id) and
        once to the results exchange, all confirmed; the ledger marks each as it is confirmed
        (`recorded` False: a refusal the ledger does not hold)."""
        body = {**final.outcome, "client": final.outcome.get("client") or final.client,
                "server": final.outcome.get("server") or final.server or None}
        data = outcomes.encode(body)
        try:
            for route in final.routes:
                props = outcomes.reply_properties(route.correlation_id, final.request_id,
                                                  route.reply_to)
                # Default exchange, not mandatory: a reply queue that is gone is the asker's loss.
                self.confirmed.basic_publish("", route.reply_to, data, props)
                self.counters["replied"] += 1
                if recorded:
                    self.ledger.sent(route)
            if not final.results_sent:
                props = outcomes.reply_properties(None, final.request_id)
                self.confirmed.basic_publish(self.topology.results_exchange,
                                             outcomes.routing_key(body), data, props)
                if recorded:
                    self.ledger.results_sent(final.request_id)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            self.log.warning("outcome of %s not confirmed: %s", final.request_id, exc)
        except sqlite3.Error as exc:
            # Sent, but not marked (full disk): sent again later, same message_id (at least once).
            self.log.warning("outcome of %s sent, not marked sent: %s", final.request_id, exc)

    def _publish_event(self, body: dict) -> None:
        self.events.basic_publish(self.topology.results_exchange, outcomes.routing_key(body),
                                  outcomes.encode(body),
                                  pika.BasicProperties(content_type=outcomes.CONTENT_TYPE))

    def _publish_queued_outcomes(self) -> None:
        if self.listener is None:
            return
        for _ in range(200):
            try:
                item = self.listener.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Final):
                self._send_final(item.request_id)  # what is still unsent, read afresh
            else:
                self._publish_event(item)

    def _trim_dead_letters(self) -> None:
        dropped = deadletters.trim(self.confirmed, self.topology.dead_letter_queue,
                                   self.settings.dead_letter_max, self.settings.dead_letter_max_age)
        if dropped:
            self.counters["dead_dropped"] += dropped
            self.log.warning("%s: %d oldest dead letter(s) dropped (limits %d messages, %.0f s; "
                             "%d dropped so far)", self.topology.dead_letter_queue, dropped,
                             self.settings.dead_letter_max, self.settings.dead_letter_max_age,
                             self.counters["dead_dropped"])

    def _maybe_prune(self, now: float) -> bool:
        """Old ledger rows go at most once per PRUNE_EVERY (also across reconnects); the WAL
        is checkpointed every CHECKPOINT_EVERY."""
        if now >= self._next_checkpoint:
            self._next_checkpoint = now + CHECKPOINT_EVERY
            try:
                self.ledger.checkpoint()
            except Exception:  # housekeeping (a full disk, a busy file): the next one tries again
                self.log.debug("ledger checkpoint failed", exc_info=True)
        if now < self._next_prune:
            return False
        self._next_prune = now + PRUNE_EVERY
        self._prune()
        return True

    def _prune(self) -> None:
        try:
            removed = self.ledger.prune()
        except Exception:  # housekeeping: never worth dropping the connection
            self.log.exception("pruning the ledger failed")
            return
        if removed:
            self.log.info("ledger: %d request(s) older than %.0f days removed", removed,
                          KEEP_FINAL / 86400)

    def _send_unsent(self) -> None:
        for final in self.ledger.unsent():
            self._publish_final(final)

    def _send_final(self, request_id: str) -> None:
        """What of a finished request's final is still unsent (a duplicate message's route)."""
        final = self.ledger.final(request_id)
        if final is not None and (final.routes or not final.results_sent):
            self._publish_final(final)


class _Probe:
    """Asks in a thread whether the first server is back (a connect can take seconds)."""

    def __init__(self, servers: Sequence[broker.Server], connect: broker.Connect) -> None:
        self.done = threading.Event()
        self.back = False

        def run() -> None:
            self.back = broker.preferred_is_back(servers, connect)
            self.done.set()

        threading.Thread(target=run, name="c2c-probe", daemon=True).start()


def _request_id_of(body: bytes) -> str | None:
    """The request_id of a message we refused, if it has a readable one (for the reply)."""
    if len(body) > MAX_BODY:
        return None
    try:
        value = json.loads(body).get("request_id")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, str) and len(value) <= 64 and value.isprintable() else None
