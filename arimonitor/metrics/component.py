"""Prometheus metrics as an engine component (one line in engineproc/app.py COMPONENTS).

It sees the engine only through its door (`engine/api.py` EngineApi): publications for the
tallies, `call_in_loop` for the loop's half of a snapshot, `read_database` for the rest.
`[metrics] port = 0` turns it off. A port that cannot be bound is logged as an ERROR and the
engine keeps running: losing the dashboard must never lose the calls.
"""

from __future__ import annotations

import logging
from typing import Any

from arimonitor.engine.api import EngineApi
from arimonitor.metrics.readings import Tallies
from arimonitor.metrics.server import MetricsServer
from arimonitor.metrics.snapshot import Snapshots, from_database

log = logging.getLogger(__name__)

LOOP_TIMEOUT = 2.0  # a loop that cannot spare a few ms in 2 s is itself the news: 503


class MetricsComponent:
    def __init__(self, api: EngineApi) -> None:
        cfg = api.cfg
        self.api = api
        self.server: MetricsServer | None = None
        self.tallies = Tallies(cfg["ari.server_id"])
        self.tallies.attach(api)
        self.snapshots = Snapshots(api, self.tallies)
        if cfg["metrics.port"]:
            self.server = MetricsServer(cfg["metrics.host"], cfg["metrics.port"], self.take,
                                        user=cfg["metrics.user"], password=cfg["metrics.password"])

    def take(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """HTTP thread: the loop's half of the snapshot, then the database's half."""
        endpoints = self.api.call_in_loop(self.snapshots.endpoints_in_loop, LOOP_TIMEOUT)
        snap = self.api.call_in_loop(self.snapshots.in_loop, LOOP_TIMEOUT)
        snap["endpoints"] = endpoints
        return snap, from_database(self.api.read_database)

    def start(self) -> None:
        if self.server is None:
            log.info("metrics off ([metrics] port = 0)")
            return
        try:
            self.server.start()
        except OSError as exc:
            log.error("metrics: cannot listen on %s:%s ([metrics] host/port): %s; the engine "
                      "runs on without /metrics", self.server.host, self.server.port, exc)
            self.server = None
            return
        host, port = self.server.address
        log.info("metrics on http://%s:%d/metrics and /healthz%s", host, port,
                 " (basic auth)" if self.server.credentials else "")

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
