"""The clicktocall process: RabbitMQ requests -> ARI originates; engine outcomes -> replies.

Composition root only: builds the tables watch, ledger, placer, outcome listener and consumer
session, and hands them to the broker's reconnect loop.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from arimonitor.clicktocall import broker, report
from arimonitor.clicktocall.ari_http import LeanAri
from arimonitor.clicktocall.authorize import Policy
from arimonitor.clicktocall.consumer import ConsumerSession, ConsumerSettings
from arimonitor.clicktocall.ledger import Ledger
from arimonitor.clicktocall.listener import OutcomeListener
from arimonitor.clicktocall.placer import AriServer, Placer, PlacerSettings
from arimonitor.clicktocall.request import Limits
from arimonitor.config import Config
from arimonitor.v27 import Tables, load_all

LEDGER_FILE = "clicktocall.sqlite"
TABLES_CHECK = 2.0  # seconds between looks at the v2.7 files' modification times
WORKERS = 8         # originate threads: HTTP waits, not CPU (2 cores reach 300/s with 8)


class TablesWatch:
    """The v2.7 tables, reloaded when a file changes; `current()` is safe from any thread."""

    def __init__(self, cfg: Config, log: logging.Logger) -> None:
        self._paths = (cfg["files.endpoints"], cfg["files.clients"], cfg["files.mqservers"])
        self._log = log
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stamp = self._mtimes()
        self._tables = self._load(None)

    def _mtimes(self) -> tuple[float, ...]:
        return tuple(os.stat(p).st_mtime if os.path.exists(p) else 0.0 for p in self._paths)

    def _load(self, previous: Tables | None) -> Tables:
        tables = load_all(*self._paths, previous=previous)
        for problem in tables.errors:
            self._log.warning("%s", problem)  # Problems are masked by the loaders
        return tables

    def current(self) -> Tables:
        now = time.monotonic()
        if now - self._checked >= TABLES_CHECK and self._lock.acquire(blocking=False):
            try:
                self._checked = now
                stamp = self._mtimes()
                if stamp != self._stamp:
                    self._stamp = stamp
                    self._tables = self._load(self._tables)
                    self._log.info("v2.7 tables reloaded: %d clients, %d endpoints",
                                   len(self._tables.clients), len(self._tables.endpoints))
            finally:
                self._lock.release()
        return self._tables


def ari_servers(cfg: Config) -> list[AriServer]:
    """Every Asterisk ([ari], then each [ari:NAME]) the origin may be registered on."""
    def maker(server: Config):
        return lambda: LeanAri(server["ari.url"], server["ari.user"], server["ari.password"],
                               server["ari.rest_timeout"])
    return [AriServer(name, cfg.for_server(name)["ari.app"], maker(cfg.for_server(name)))
            for name in cfg.servers]


def run(cfg: Config, stopper: Any, log: logging.Logger) -> int:
    if not cfg["clicktocall.enabled"]:
        log.info("click-to-call disabled ([clicktocall] enabled = no)")
        while not stopper.wait(5.0):
            pass
        return 0
    tables = TablesWatch(cfg, log)
    servers = tables.current().mqservers
    while not servers:
        log.error("no usable RabbitMQ server in %s; waiting for the file to change",
                  cfg["files.mqservers"])
        if stopper.wait(5.0):
            return 0
        servers = tables.current().mqservers
    log.info("RabbitMQ servers, in order: %s", ", ".join(broker.describe(s) for s in servers))
    try:
        policy = Policy.from_config(cfg)
    except ValueError as exc:
        log.error("%s", exc)
        return 78  # a configuration error: supervisord shows it, as for any bad setting
    log.log(logging.WARNING if not policy.publishers else logging.INFO,
            "click-to-call authorization: %s", policy.describe())
    var = Path(cfg["paths.var"])
    var.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(var / LEDGER_FILE)
    listener = OutcomeListener(cfg["zmq.publish"], ledger, log)
    listener.start()
    placer = Placer(PlacerSettings(app=cfg["ari.app"],
                                   default_record=cfg["recordings.default_record"],
                                   max_wait=cfg["clicktocall.max_wait"], policy=policy),
                    tables.current, ledger, ari_servers(cfg), log)
    settings = ConsumerSettings.from_env(
        results_exchange=cfg["clicktocall.results_exchange"], prefetch=cfg["clicktocall.prefetch"],
        workers=WORKERS, retry_delay=cfg["clicktocall.retry_delay"],
        max_attempts=cfg["clicktocall.max_attempts"], max_age=cfg["clicktocall.max_age"],
        failback_check=cfg["clicktocall.failback_check"],
        dead_letter_max=cfg["clicktocall.dead_letter_max"],
        dead_letter_max_age=cfg["clicktocall.dead_letter_max_age"],
        limits=Limits(default_timeout=cfg["clicktocall.default_timeout"],
                      max_timeout=cfg["clicktocall.max_timeout"]))
    if settings.test_ack_delay:
        log.warning("TEST ONLY: acks of accepted requests are delayed %.1f s", settings.test_ack_delay)
    session = ConsumerSession(servers, settings, placer, ledger, listener, stopper, log)
    # `_report` to the engine (status), then the catch-up of finals the PUB missed
    session = report.track(cfg, session, servers, stopper, log, report.CatchUp(ledger, listener))
    try:
        end = broker.run_sessions(servers, session, stopper, log)
    finally:
        session.executor.shutdown(wait=True, cancel_futures=True)
        listener.stop()
        ledger.close()
        log.info("click-to-call counters: %s", session.counters)
    return 0 if not end.fatal else 1
