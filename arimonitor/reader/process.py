"""The ari-reader process: the reconnect loop around Connection, and the stats it reports.

Backoff: 0.5 s doubling to `ari.reconnect_max` (30 s), each wait drawn in [50%, 100%] of the
step (jitter, so many readers do not return in step), back to 0.5 s after a healthy connection.
While Asterisk is away the wait is cut short as soon as ARI answers again.
"""

from __future__ import annotations

import logging
import time

from arimonitor import protocol
from arimonitor.backoff import Backoff
from arimonitor.config import Config
from arimonitor.curve import secure_reader_socket
from arimonitor.process import Stopper
from arimonitor.reader.connection import (
    Connection,
    ReaderStats,
    asterisk_answers,
    basic_auth,
    events_url,
)
from arimonitor.reader.forwarder import Forwarder
from arimonitor.repeats import STARTUP_GRACE, RepeatedFailure

STATS_INTERVAL = 2.0
WATCH_EVERY = 0.5   # while Asterisk is away: how often to ask whether it answers again


class Reader:
    def __init__(self, cfg: Config, forwarder: Forwarder, stopper: Stopper, log: logging.Logger) -> None:
        self.cfg = cfg
        self.forwarder = forwarder
        self.stopper = stopper
        self.log = log
        self.server = cfg["ari.server_id"]
        self.url = events_url(cfg["ari.url"], cfg["ari.app"])
        self.auth = basic_auth(cfg["ari.user"], cfg["ari.password"])
        self.stats = ReaderStats()
        self.backoff = Backoff(0.5, max(0.5, cfg["ari.reconnect_max"]))
        self._stats_due = 0.0
        self._last_epoch = 0
        self.failures = RepeatedFailure(log, f"connecting to ARI {self.url}", grace=STARTUP_GRACE)

    def send_stats(self, force: bool = False) -> None:
        self.forwarder.watch()
        now = time.monotonic()
        if force or now >= self._stats_due:
            self._stats_due = now + STATS_INTERVAL
            self.forwarder.notice([protocol.KIND_READER_STATS,
                                   protocol.dumps(self.stats.view(self.forwarder, self.server))])

    def new_epoch(self) -> int:
        # Milliseconds since 1970: unique per connection, across reader restarts too.
        epoch = max(int(time.time() * 1000), self._last_epoch + 1)
        self._last_epoch = epoch
        return epoch

    def run(self) -> None:
        first = True
        while not self.stopper.stopping:
            if not first:
                self.stats.reconnects += 1
            first = False
            connection = Connection(
                url=self.url, auth_header=self.auth, server=self.server, epoch=self.new_epoch(),
                ping_interval=self.cfg["ari.ping_interval"], forwarder=self.forwarder,
                stats=self.stats, stopping=lambda: self.stopper.stopping, on_idle=self.send_stats)
            outcome = connection.run()
            if self.stopper.stopping:
                break
            if outcome.healthy:
                self.backoff.reset()
            delay = self.backoff.next()
            if outcome.auth_failed:
                self.stats.auth_failures += 1
            if outcome.connected:
                # a link that was up went down: news every time (the engine resyncs)
                self.failures.succeeded()
                self.log.warning("ARI %s: %s; reconnecting in %.1f s", self.url, outcome.reason, delay)
            else:
                # cannot connect: once, then a count (an outage is one episode, not a line per try)
                self.failures.failed(f"{outcome.reason} (as user {self.cfg['ari.user']!r})")
            self.send_stats(force=True)
            self.wait(delay, watch=not (outcome.auth_failed or outcome.refused))
        self.send_stats(force=True)


    def wait(self, delay: float, watch: bool) -> None:
        """The backoff's wait. While Asterisk is away (`watch`: not a refusal, which only an
        operator fixes) ARI is asked every WATCH_EVERY whether it answers again: a restarted
        Asterisk is reconnected to at once, not after the rest of a long backoff step."""
        deadline = time.monotonic() + delay
        step = WATCH_EVERY if watch else 1.0
        while not self.stopper.wait(max(0.0, min(step, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return
            self.send_stats()
            if watch and asterisk_answers(self.cfg["ari.url"], self.auth):
                self.log.info("Asterisk answers again: reconnecting now")
                return


def run(cfg: Config, stopper: Stopper, log: logging.Logger) -> int:
    secure = (lambda sock: secure_reader_socket(sock, cfg)) if cfg["zmq.curve"] else None
    forwarder = Forwarder(cfg["zmq.events"], secure=secure)
    try:
        Reader(cfg, forwarder, stopper, log).run()
    finally:
        forwarder.close()
    return 0
