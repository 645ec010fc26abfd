"""The engine's metrics log line and the counter totals it reports.

Every `logging.metrics_interval` seconds (read again at each line, so a run-time change applies
from the next one) the totals are saved to SQLite first, then one line goes to the metrics log:
the line never shows a total SQLite lacks. A total is what this run counted plus what earlier
runs saved (`Counters.PERSISTED`); `arictl` shows them through the door's `totals()`.
"""

from __future__ import annotations

from arimonitor.config import Config
from arimonitor.engine.intake import Intake
from arimonitor.engine.link import LinkMonitor
from arimonitor.engine.loop import Loop
from arimonitor.engine.state import Counters, State
from arimonitor.engine.store import Store
from arimonitor.logs import setup_line_log


class MetricsLine:
    def __init__(self, cfg: Config, state: State, store: Store, intake: Intake,
                 link: LinkMonitor) -> None:
        self.cfg, self.state, self.store, self.intake, self.link = cfg, state, store, intake, link
        self.log = setup_line_log("metrics", cfg)
        self.base = store.load_counters()
        self.timer = None

    def start(self, loop: Loop) -> None:
        self.timer = loop.every(self.cfg["logging.metrics_interval"], self.write)

    def totals(self) -> dict[str, int]:
        counters = self.state.counters
        return {name: self.base.get(name, 0) + getattr(counters, name)
                for name in Counters.PERSISTED}

    def save(self) -> None:
        self.store.save_counters(self.totals())

    def write(self) -> None:
        self.save()  # first: the line never shows a total SQLite lacks
        if self.timer is not None:
            self.timer.interval = self.cfg["logging.metrics_interval"]
        c = self.state.counters
        s = self.state.summary()
        intake, probe = self.intake, self.link.probe
        age = intake.last_event_age()
        self.log.info(
            "received=%d applied=%d duplicate=%d malformed=%d unknown=%d superseded=%d lost=%d "
            "lag_ms=%.1f last_event_age=%s calls=%d channels=%d endpoints=%d online=%d "
            "probe_ok=%d probe_failed=%d probe_ms=%s resyncs=%d link=%s",
            c.received, c.applied, c.duplicate, c.malformed, c.unknown_type, c.superseded,
            c.frames_lost, intake.lag * 1000, "-" if age is None else f"{age:.1f}", s["calls"],
            s["channels"], s["endpoints"], s["online"], probe.ok, probe.failed,
            probe.view()["last_latency_ms"], c.resyncs, self.link.link.get("state"))
