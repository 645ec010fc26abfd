"""The events bus as the engine sees it (one line in engineproc/app.py COMPONENTS).

The publishing runs in its own process (bus/process.py, supervisord program `bus`), fed by the
engine's PUB socket; the engine does no bus work per event. What is left here is the bus's view
for `arictl stats` (group bus) and Prometheus (`arimonitor_bus_*`): the bus process's last
`_report`, or "not connected" with why when it has not reported (yet, or for too long).
"""

from __future__ import annotations

import time
from typing import Any

from arimonitor.engine.api import EngineApi

PROCESS = "bus"            # the `process` of the bus process's reports
STALE_AFTER = 15.0         # seconds without a report: the bus process is down or stuck
COUNTERS = ("queued", "limit", "high_water", "appended", "published", "confirmed", "dropped",
            "failures", "missed", "caught_up")


class BusComponent:
    def __init__(self, api: EngineApi) -> None:
        cfg = api.cfg
        self.api = api
        self.enabled = bool(cfg["bus.enabled"])
        self.broker = f"{cfg['bus.user']}@{cfg['bus.host']}:{cfg['bus.port']}{cfg['bus.vhost']}"
        self.exchange = cfg["bus.exchange"]
        api.offer("bus", self.view)

    def view(self, now: float | None = None) -> dict[str, Any]:
        if not self.enabled:
            return {"enabled": False}
        now = time.time() if now is None else now
        report = self.api.process_reports().get(PROCESS)
        counters = (report or {}).get("counters")
        counters = counters if isinstance(counters, dict) else {}
        view: dict[str, Any] = {"exchange": self.exchange, "broker": self.broker,
                                **{name: 0 for name in COUNTERS}, "connected": False,
                                "connected_since": None, "last_error": ""}
        view.update({k: v for k, v in counters.items() if k in view})
        view["enabled"] = True
        view["reported"] = report["received"] if report else None
        if report is None:
            view["connected"], view["last_error"] = False, "the bus process has not reported yet"
        elif now - report["received"] > STALE_AFTER:
            view["connected"] = False
            view["last_error"] = f"the bus process is silent for {now - report['received']:.0f} s"
        return view
