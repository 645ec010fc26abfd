"""Read-only queries on the engine: plain values for the door (`door.py`), loop thread only."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from arimonitor.engine.link import LinkMonitor
from arimonitor.engine.notifier import Notifier
from arimonitor.engine.resyncer import Resyncer
from arimonitor.engine.state import State
from arimonitor.engine.store import Store


class Queries:
    def __init__(self, *, state: State, store: Store, notifier: Notifier, link: LinkMonitor,
                 resyncer: Resyncer, continue_pool: Any = None) -> None:
        self.state = state
        self.store = store
        self.notifier = notifier
        self.link = link
        self.resyncer = resyncer
        self.continue_pool = continue_pool  # rest_pool.RestPool: `continue`s in flight
        self.started = time.time()
        self.intake: Any = None             # set by the app: last event age, lag, batch

    def active_calls(self, client: str | None = None) -> list[dict[str, Any]]:
        return [dict(c.view(), line=c.line()) for c in self.state.active_calls(client)]

    def endpoints(self, client: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        return [e.view() for e in self.state.endpoints.values()
                if (client is None or e.client == client) and (state is None or e.state == state)]

    def remote_ips(self) -> list[dict[str, Any]]:
        return [r.view() for r in sorted(self.state.remote_ips.values(), key=lambda r: r.ip)]

    def recording_meta(self, name: str) -> dict[str, Any] | None:
        """The call a recording belongs to: call_id, client, origin, destination, created."""
        meta = self.state.recording_calls.get(name)
        return dict(meta) if meta else None

    def recording_live(self, name: str) -> bool:
        """True while Asterisk is still writing this recording."""
        return name in self.state.recordings

    def history(self, client: str | None = None, since: float | None = None,
                limit: int = 50, server: str | None = None) -> list[dict[str, Any]]:
        return self.store.history(client, since, limit, server=server)

    def outages(self, limit: int = 20) -> list[dict[str, Any]]:
        return self.store.outages(limit)

    def status(self) -> dict[str, Any]:
        intake, resyncer = self.intake, self.resyncer
        return {"uptime": round(time.time() - self.started, 1), "link": dict(self.link.link),
                "state": self.state.summary(), "probe": self.link.probe.view(),
                "last_event_age": intake.last_event_age() if intake else None,
                "resync_running": resyncer.running, "last_resync": resyncer.last,
                "outage_open_since": resyncer.outage_started,
                "last_outage": resyncer.last_outage or self._last_saved_outage(),
                "store": self._store_view()}

    def _store_view(self) -> dict[str, Any]:
        """Whether SQLite takes writes (a full disk: EngineEffects keeps ended calls)."""
        fx = getattr(getattr(self.link, "handlers", None), "fx", None)
        view = getattr(fx, "store_view", None)
        return view() if view else {"error": "", "unsaved": 0, "dropped": 0}

    def _last_saved_outage(self) -> dict[str, Any] | None:
        try:
            return next(iter(self.store.outages(1)), None)
        except sqlite3.Error:  # status must answer even when SQLite cannot
            return None

    def stats(self) -> dict[str, Any]:
        intake = self.intake
        return {"counters": self.state.counters.as_dict(),
                "intake": intake.view() if intake else {},
                "reader": self.link.reader_stats, "probe": self.link.probe.view(),
                "publish": {"published": self.notifier.published, "dropped": self.notifier.dropped},
                "continue_pending": self.continue_pool.pending if self.continue_pool else 0,
                "store": self._store_view()}
