"""The engine's metrics log line and the counter totals it reports.

Every `logging.metrics_interval` seconds (read again at each line, so a run-time change applies
from the next one) the totals are saved to SQLite first, then one line goes to the metrics log:
the line never shows a total SQLite lacks. A total is what this run counted plus what earlier
runs saved (`Counters.PERSISTED`); `arictl` shows them through the door's `totals()`.
"""

from __future__ import annotations

import logging
import sqlite3

from arimonitor.config import Config
from arimonitor.engine.intake import Intake
from arimonitor.engine.loop import Loop
from arimonitor.engine.state import Counters
from arimonitor.engine.store import Store
from arimonitor.engine.watch import Watch
from arimonitor.logs import setup_line_log
from arimonitor.repeats import RepeatedFailure

log = logging.getLogger(__name__)


class MetricsLine:
    def __init__(self, cfg: Config, watches: list[Watch], store: Store, intake: Intake) -> None:
        self.cfg, self.watches, self.store, self.intake = cfg, watches, store, intake
        self.log = setup_line_log("metrics", cfg)
        self.base = store.load_counters()
        self.timer = None
        # a full disk: one warning for the episode, then a count; no line meanwhile
        self.save_failures = RepeatedFailure(log, "saving the counter totals (no metrics line meanwhile)")

    def start(self, loop: Loop) -> None:
        self.timer = loop.every(self.cfg["logging.metrics_interval"], self.write)

    def totals(self) -> dict[str, int]:
        """Summed over the servers: the totals are the engine's."""
        every = [w.state.counters for w in self.watches]
        return {name: self.base.get(name, 0) + sum(getattr(c, name) for c in every)
                for name in Counters.PERSISTED}

    def save(self) -> None:
        self.store.save_counters(self.totals())

    def write(self) -> None:
        try:
            self.save()  # first: the line never shows a total SQLite lacks
        except sqlite3.Error as exc:
            self.save_failures.failed(str(exc))
            return
        self.save_failures.succeeded()
        if self.timer is not None:
            self.timer.interval = self.cfg["logging.metrics_interval"]
        c = _Sum([w.state.counters for w in self.watches])
        summaries = [w.state.summary() for w in self.watches]
        s = {key: sum(v[key] for v in summaries) for key in ("calls", "channels", "online")}
        s["endpoints"] = max(v["endpoints"] for v in summaries)  # every state lists the files'

        intake, first = self.intake, self.watches[0]
        probe = first.link.probe
        age = intake.last_event_age()
        # one server: the line as before; several: each one's link after it
        links = (first.link.link.get("state") if len(self.watches) == 1 else
                 ",".join(f"{w.server}:{w.link.link.get('state')}" for w in self.watches))
        self.log.info(
            "received=%d applied=%d duplicate=%d malformed=%d unknown=%d superseded=%d lost=%d "
            "lag_ms=%.1f last_event_age=%s calls=%d channels=%d endpoints=%d online=%d "
            "probe_ok=%d probe_failed=%d probe_ms=%s resyncs=%d link=%s",
            c.received, c.applied, c.duplicate, c.malformed, c.unknown_type, c.superseded,
            c.frames_lost, intake.lag * 1000, "-" if age is None else f"{age:.1f}", s["calls"],
            s["channels"], s["endpoints"], s["online"], probe.ok, probe.failed,
            probe.view()["last_latency_ms"], c.resyncs, links)


class _Sum:
    """Counters of several servers read as one (attribute access sums them)."""

    def __init__(self, counters: list[Counters]) -> None:
        self._counters = counters

    def __getattr__(self, name: str) -> int:
        return sum(getattr(c, name) for c in self._counters)
