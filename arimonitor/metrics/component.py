"""Prometheus metrics as an engine component (one line in engine/app.py COMPONENTS).

`[metrics] port = 0` turns it off. A port that cannot be bound is logged as an ERROR and the
engine keeps running: losing the dashboard must never lose the calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from arimonitor.metrics.readings import EngineAdapter, Tallies
from arimonitor.metrics.server import MetricsServer
from arimonitor.metrics.snapshot import Snapshots, from_database

log = logging.getLogger(__name__)

LOOP_TIMEOUT = 2.0  # a loop that cannot spare a few ms in 2 s is itself the news: 503


def ask_loop(post: Callable[[Callable[[], None]], None], fn: Callable[[], Any],
             timeout: float = LOOP_TIMEOUT) -> Any:
    """Run fn() in the loop thread (through `post`) and wait for its value here."""
    done = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
            box["error"] = exc
        finally:
            done.set()

    post(run)
    if not done.wait(timeout):
        raise TimeoutError(f"the engine loop did not answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class MetricsComponent:
    def __init__(self, engine: Any) -> None:
        cfg = engine.cfg
        self.server: MetricsServer | None = None
        self.tallies = Tallies()
        self.tallies.attach(engine.notifier)
        readings = EngineAdapter(engine)
        self.snapshots = Snapshots(readings, self.tallies)
        self.database = readings.database()
        self.post = engine.loop.call_soon_threadsafe
        if cfg["metrics.port"]:
            self.server = MetricsServer(cfg["metrics.host"], cfg["metrics.port"], self.take,
                                        user=cfg["metrics.user"], password=cfg["metrics.password"])

    def take(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """HTTP thread: the loop's half of the snapshot, then the database's half."""
        snap = ask_loop(self.post, self.snapshots.in_loop)
        return snap, from_database(self.database)

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
