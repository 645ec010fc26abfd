"""What state cannot give back at scrape time, tallied as it happens.

`Tallies` counts ended calls by cause and their durations, click-to-call outcomes, resync
durations and unseen outage seconds, each per server but the click-to-call outcomes: it
subscribes to the engine's publications (through the engine's door, `engine/api.py`), a few
integer additions per ended call, nothing per ARI event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from arimonitor import protocol

# Bucket bounds in seconds: a PBX call is seconds to an hour; a resync milliseconds to seconds.
CALL_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
RESYNC_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MAX_CAUSE = 127  # Q.850 causes; anything else is one label value, "other"


class Histogram:
    """Cumulative buckets, a sum and a count: what a Prometheus histogram needs, plain."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break
        self.sum += value
        self.count += 1

    def view(self) -> dict[str, Any]:
        """Buckets as (upper bound, cumulative count), +Inf last."""
        running, buckets = 0, []
        for bound, n in zip(self.bounds, self.counts, strict=True):
            running += n
            buckets.append((bound, running))
        buckets.append((float("inf"), self.count))
        return {"buckets": buckets, "sum": self.sum, "count": self.count}


def cause_label(cause: Any) -> str:
    """A hangup cause as a bounded label value."""
    if isinstance(cause, int) and 0 <= cause <= MAX_CAUSE:
        return str(cause)
    return "unknown" if cause is None else "other"


class Tallies:
    """Listens to publications (loop thread); `view()` is a copy for a snapshot."""

    def __init__(self, first_server: str = "") -> None:
        # per server (the `server` of each call.ended; the first server's when a body has
        # none): where the calls ended, how long they lasted
        self.first_server = first_server
        self.ended: Counter[tuple[str, str, str]] = Counter()   # (server, cause, end reason)
        self.duration: dict[str, Histogram] = {}
        self.billsec: dict[str, Histogram] = {}
        self.c2c: Counter[tuple[str, str]] = Counter()          # (result, reason)
        # per server (the `server` of each link.resynced): whose resyncs were slow, whose
        # outages left events unseen
        self.resync: dict[str, Histogram] = {}
        self.unseen_seconds: dict[str, float] = {}

    def attach(self, api: Any) -> None:
        """api: anything with `subscribe(prefix, fn)` (the engine's door)."""
        api.subscribe(protocol.TOPIC_CALL_ENDED, self.on_call_ended)
        api.subscribe(protocol.TOPIC_C2C_FINAL, self.on_c2c_final)
        api.subscribe(protocol.TOPIC_LINK_RESYNCED, self.on_resynced)

    def on_call_ended(self, _topic: str, body: dict[str, Any]) -> None:
        server = str(body.get("server") or self.first_server)
        self.ended[server, cause_label(body.get("hangup_cause")), str(body.get("end_reason") or "")] += 1
        if server not in self.duration:
            self.duration[server] = Histogram(CALL_BUCKETS)
            self.billsec[server] = Histogram(CALL_BUCKETS)
        self.duration[server].observe(float(body.get("duration") or 0.0))
        self.billsec[server].observe(float(body.get("billsec") or 0.0))

    def on_c2c_final(self, _topic: str, body: dict[str, Any]) -> None:
        self.c2c[str(body.get("result") or ""), str(body.get("reason") or "")] += 1

    def on_resynced(self, _topic: str, body: dict[str, Any]) -> None:
        server = str(body.get("server") or "")
        if isinstance(body.get("total_seconds"), (int, float)):
            if server not in self.resync:
                self.resync[server] = Histogram(RESYNC_BUCKETS)
            self.resync[server].observe(float(body["total_seconds"]))
        unseen = body.get("unseen_seconds")
        if isinstance(unseen, (int, float)):
            self.unseen_seconds[server] = self.unseen_seconds.get(server, 0.0) + unseen

    def view(self) -> dict[str, Any]:
        return {"ended": dict(self.ended),
                "duration": {name: h.view() for name, h in self.duration.items()},
                "billsec": {name: h.view() for name, h in self.billsec.items()},
                "c2c": dict(self.c2c),
                "resync": {name: h.view() for name, h in self.resync.items()},
                "unseen_seconds": dict(self.unseen_seconds)}
