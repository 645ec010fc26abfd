"""What `arictl top` shows, kept up to date from replies and PUB events; no I/O, no terminal.

    model = TopModel()
    model.take("status", data) / take("stats", ...) / take("list", rows) / take("calls", rows)
    model.take("jobs", stats)                  # the transcoder pool (absent: None)
    model.on_event(topic, body)                # endpoint.*, call.*, c2c.final, link.*
    view = model.view(client=None)             # plain dict the plain and rich renderers share

Replies are the truth and come every few seconds; events keep the view live in between (an
endpoint going offline, a call ending, an outcome) and the next reply corrects any drift.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any

C2C_WINDOW = 60.0      # seconds the click-to-call rate looks back
C2C_KEPT = 2000        # outcomes remembered for the rate: bounded, oldest first out
CALL_STATES = ("ringing", "up")


class TopModel:
    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.counters: dict[str, int] = {}
        self.endpoints: dict[str, tuple[str, str]] = {}    # id -> (client, state)
        self.calls: dict[str, dict[str, Any]] = {}          # id -> the `calls` row
        self.jobs: dict[str, Any] | None = None
        self.c2c_recent: deque[tuple[float, str]] = deque(maxlen=C2C_KEPT)  # (t, result)
        # (result, reason) -> count: the engine's recent finals at start, then every one seen
        self.c2c_outcomes: Counter[tuple[str, str]] = Counter()
        self.events = 0
        self.engine_error = ""                              # the last failed refresh, if any

    # ---- input ---------------------------------------------------------------------------------

    def take(self, what: str, data: Any) -> None:
        if what == "status":
            self.status = data
        elif what == "stats":
            self.counters = data.get("counters", {})
        elif what == "list":
            self.endpoints = {e["id"]: (e.get("client") or "", e.get("state") or "unknown") for e in data}
        elif what == "calls":
            self.calls = {c["id"]: c for c in data}
        elif what == "jobs":
            self.jobs = data
        elif what == "c2c":  # once at start: the recent finals, so the view starts with a past
            for row in sorted(data.get("recent", []), key=lambda r: r.get("updated") or 0):
                if row.get("result"):
                    self._c2c_final(float(row.get("updated") or 0), row["result"], row.get("reason"))

    def on_event(self, topic: str, body: Any) -> None:
        if not isinstance(body, dict):
            return
        self.events += 1
        family, _, kind = topic.partition(".")
        if family == "endpoint" and kind in ("online", "offline", "unknown") and body.get("id"):
            self.endpoints[body["id"]] = (body.get("client") or "", kind)
        elif family == "call" and body.get("id"):
            if kind == "ended":
                self.calls.pop(body["id"], None)
            elif kind in CALL_STATES:
                self.calls[body["id"]] = body
        elif family == "c2c" and kind == "final":
            self._c2c_final(float(body.get("t") or time.time()), body.get("result"), body.get("reason"))
        elif family == "link" and kind in ("connected", "disconnected") and self.status:
            self.status["link"] = {**self.status.get("link", {}), "state": kind,
                                   "since": body.get("since") or body.get("t")}

    def _c2c_final(self, t: float, result: Any, reason: Any) -> None:
        result, reason = str(result or "?"), str(reason or "")
        self.c2c_recent.append((t, result))
        self.c2c_outcomes[result, reason] += 1

    # ---- output --------------------------------------------------------------------------------

    def clients(self) -> list[str]:
        return sorted({client for client, _state in self.endpoints.values() if client}
                      | {c.get("client") for c in self.calls.values() if c.get("client")})

    def view(self, client: str | None = None, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        return {"now": now, "client": client, "link": self._link(now),
                "endpoints": self._endpoints(client), "calls": self._calls(client, now),
                "c2c": self._c2c(now), "transcoder": self._transcoder(),
                "events": self.events, "engine_error": self.engine_error}

    def _link(self, now: float) -> dict[str, Any]:
        status = self.status
        link = status.get("link") or {}
        state = status.get("state") or {}
        outage = status.get("last_outage") or {}
        return {"server": link.get("server") or state.get("server") or "?",
                "state": link.get("state") or "unknown", "since": link.get("since"),
                "outages": self.counters.get("outages"),
                "open_since": status.get("outage_open_since"),
                "last_unseen": outage.get("unseen"), "last_outage_at": outage.get("disconnected"),
                "last_event_age": status.get("last_event_age"), "uptime": status.get("uptime")}

    def _endpoints(self, client: str | None) -> list[tuple[str, int, int, int]]:
        """(client, online, offline, unknown) per client, the clients with most offline first."""
        per: dict[str, Counter[str]] = {}
        for owner, state in self.endpoints.values():
            if client is None or owner == client:
                per.setdefault(owner or "-", Counter())[state] += 1
        rows = [(name, c["online"], c["offline"], c["unknown"]) for name, c in per.items()]
        return sorted(rows, key=lambda r: (-r[2], r[0]))

    def _calls(self, client: str | None, now: float) -> list[dict[str, Any]]:
        rows = [c for c in self.calls.values() if client is None or c.get("client") == client]
        rows.sort(key=lambda c: c.get("created") or now)
        return [{"client": c.get("client") or "-", "from": c.get("origin") or "?",
                 "to": c.get("destination") or "?", "state": c.get("state") or "?",
                 "direction": c.get("direction") or "?",
                 "for": max(0.0, now - (c.get("created") or now))} for c in rows]

    def _c2c(self, now: float) -> dict[str, Any]:
        recent = [result for t, result in self.c2c_recent if now - t <= C2C_WINDOW]
        reports = (self.status.get("processes") or {}).get("clicktocall") or []
        consumer = reports[0] if reports else {}
        return {"per_minute": len(recent) * 60.0 / C2C_WINDOW, "last_minute": Counter(recent),
                "outcomes": sorted(self.c2c_outcomes.items(), key=lambda kv: -kv[1]),
                "broker": consumer.get("broker"), "stale": consumer.get("stale"),
                "consumer": consumer.get("counters") or {}, "reported": bool(reports)}

    def _transcoder(self) -> dict[str, Any] | None:
        if self.jobs is None:
            return None
        backlog = self.jobs.get("backlog") or {}
        return {"alive": self.jobs.get("workers_alive"), "backlog": backlog.get("jobs", 0),
                "seconds_left": backlog.get("seconds_left"),
                "per_minute": (self.jobs.get("rate") or {}).get("jobs_per_minute"),
                "failed": self.jobs.get("failed")}
