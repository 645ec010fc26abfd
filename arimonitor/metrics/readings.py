"""What the metrics collector may read of the engine, and nothing else.

`EngineReadings` is the whole surface: queries returning plain values, called in the loop
thread. `EngineAdapter` implements it over today's engine parts; when the engine's own typed
API (engine/api.py) offers these queries, the adapter becomes a thin forwarder and nothing
else here changes.

`Tallies` keeps what state cannot give back at scrape time (ended calls by cause, their
durations, click-to-call outcomes, outages): it listens to the engine's notifier, a few
integer additions per ended call, nothing per ARI event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

# Bucket bounds in seconds: a PBX call is seconds to an hour; a resync milliseconds to seconds.
CALL_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
RESYNC_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MAX_CAUSE = 127  # Q.850 causes; anything else is one label value, "other"


class EngineReadings(Protocol):
    def server(self) -> str: ...
    def started(self) -> float: ...
    def endpoint_states(self) -> Iterable[tuple[str, str]]: ...       # (client, state) each
    def active_calls(self) -> Iterable[tuple[str, str, str]]: ...     # (client, direction, state)
    def counters(self) -> dict[str, int]: ...                         # since the engine started
    def link(self) -> dict[str, Any]: ...                             # state, since, epoch
    def probe(self) -> dict[str, Any]: ...                            # ProbeStats.view()
    def last_event_age(self) -> float | None: ...
    def reader_stats(self) -> dict[str, Any]: ...
    def outage_open_since(self) -> float | None: ...
    def transcoders(self) -> dict[str, int] | None: ...               # alive, known, gone; None = no pool
    def clicktocall_reports(self) -> list[dict[str, Any]]: ...        # the consumer's _report
    def clicktocall_in_flight(self) -> int | None: ...                # None = no click-to-call
    def database(self) -> str: ...                                    # read off the loop thread


class EngineAdapter:
    """EngineReadings over the engine of today (engine/app.py)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def server(self) -> str:
        return self.engine.state.server

    def started(self) -> float:
        return self.engine.services.started

    def endpoint_states(self) -> Iterable[tuple[str, str]]:
        return ((e.client, e.state) for e in self.engine.state.endpoints.values())

    def active_calls(self) -> Iterable[tuple[str, str, str]]:
        return ((c.client, c.direction, c.state) for c in self.engine.state.calls.values())

    def counters(self) -> dict[str, int]:
        return self.engine.state.counters.as_dict()

    def link(self) -> dict[str, Any]:
        return dict(self.engine.services.link)

    def probe(self) -> dict[str, Any]:
        return self.engine.services.probe.view()

    def last_event_age(self) -> float | None:
        intake = self.engine.intake
        return intake.last_event_age() if intake is not None else None

    def reader_stats(self) -> dict[str, Any]:
        return dict(self.engine.services.reader_stats or {})

    def outage_open_since(self) -> float | None:
        return self.engine.services.outage_started

    def _component(self, attribute: str) -> Any:
        for component in getattr(self.engine, "components", ()):
            if getattr(component, attribute, None) is not None:
                return component
        return None

    def transcoders(self) -> dict[str, int] | None:
        component = self._component("transcode") or self._component("book")
        book = getattr(getattr(component, "transcode", component), "book", None)
        if book is None or not hasattr(book, "live_workers"):
            return None
        return {"alive": len(book.live_workers()), "known": len(book.workers),
                "gone": int(book.counters.get("workers_gone", 0))}

    def clicktocall_reports(self) -> list[dict[str, Any]]:
        reports = getattr(self.engine.services, "process_reports", None) or {}
        return [dict(r) for _name, r in sorted(reports.items())]

    def clicktocall_in_flight(self) -> int | None:
        component = self._component("flow")
        return None if component is None else len(component.flow.calls)

    def database(self) -> str:
        return str(self.engine.store.path)


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
    """Listens to the notifier (loop thread); `view()` is a copy for a snapshot."""

    def __init__(self) -> None:
        self.ended: Counter[tuple[str, str]] = Counter()        # (cause, end reason)
        self.duration = Histogram(CALL_BUCKETS)
        self.billsec = Histogram(CALL_BUCKETS)
        self.c2c: Counter[tuple[str, str]] = Counter()          # (result, reason)
        self.resync = Histogram(RESYNC_BUCKETS)
        self.unseen_seconds = 0.0
        self.last_unseen: float | None = None

    def attach(self, notifier: Any) -> None:
        notifier.subscribe("call.ended", self.on_call_ended)
        notifier.subscribe("c2c.final", self.on_c2c_final)
        notifier.subscribe("link.resynced", self.on_resynced)

    def on_call_ended(self, _topic: str, body: dict[str, Any]) -> None:
        self.ended[cause_label(body.get("hangup_cause")), str(body.get("end_reason") or "")] += 1
        self.duration.observe(float(body.get("duration") or 0.0))
        self.billsec.observe(float(body.get("billsec") or 0.0))

    def on_c2c_final(self, _topic: str, body: dict[str, Any]) -> None:
        self.c2c[str(body.get("result") or ""), str(body.get("reason") or "")] += 1

    def on_resynced(self, _topic: str, body: dict[str, Any]) -> None:
        if isinstance(body.get("total_seconds"), (int, float)):
            self.resync.observe(float(body["total_seconds"]))
        unseen = body.get("unseen_seconds")
        if isinstance(unseen, (int, float)):
            self.unseen_seconds += unseen
            self.last_unseen = float(unseen)

    def view(self) -> dict[str, Any]:
        return {"ended": dict(self.ended), "duration": self.duration.view(),
                "billsec": self.billsec.view(), "c2c": dict(self.c2c),
                "resync": self.resync.view(), "unseen_seconds": self.unseen_seconds,
                "last_unseen": self.last_unseen}
