"""Read-only queries on the engine: plain values for the door (`door.py`), loop thread only.

The engine keeps one state per server (watch.py): these look across them. An endpoint is
listed once, with the `server` it is online on now (None: registered nowhere); `status` and
`stats` keep the first server's fields at the top (as before several servers) and give each
server's in `servers`.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from arimonitor.engine import states as S
from arimonitor.engine.notifier import Notifier
from arimonitor.engine.state import Endpoint
from arimonitor.engine.store import Store
from arimonitor.engine.watch import Watch


class Queries:
    def __init__(self, *, watches: list[Watch], store: Store, notifier: Notifier,
                 registrations: Any = None) -> None:
        self.watches = watches
        self.first = watches[0]
        self.state = watches[0].state        # remote IPs: one table for every server
        self.store = store
        self.notifier = notifier
        self.registrations = registrations   # registrations.Registrations: two servers at once
        self.started = time.time()
        self.intake: Any = None             # set by the app: last event age, lag, batch

    def watch(self, server: str | None) -> Watch:
        """The server's watch (the first without a name); KeyError if not configured."""
        if server is None:
            return self.first
        for watch in self.watches:
            if watch.server == server:
                return watch
        raise KeyError(server)

    def active_calls(self, client: str | None = None, server: str | None = None) -> list[dict[str, Any]]:
        watches = self.watches if server is None else [self.watch(server)]
        calls = [c for w in watches for c in w.state.active_calls(client)]
        if len(watches) > 1:
            calls.sort(key=lambda c: c.created)
        return [dict(c.view(), line=c.line()) for c in calls]

    def endpoints(self, client: str | None = None, state: str | None = None,
                  server: str | None = None) -> list[dict[str, Any]]:
        if server is not None:
            self.watch(server)  # KeyError when not configured
        views = []
        for ep, where in self._endpoints():
            if (client is None or ep.client == client) and (state is None or ep.state == state) \
                    and (server is None or server in where):
                view = ep.view()
                view["server"] = where[0] if where else None
                if len(where) > 1:
                    view["servers"] = list(where)
                views.append(view)
        return views

    def counted_endpoints(self) -> list[tuple[Endpoint, str]]:
        """One record per endpoint across the servers and the server it counts under (the
        metrics' `server` label): the first it is online on, as `list` shows; an endpoint
        online nowhere belongs to no server and counts under the first, as with one server."""
        first = self.first.server
        return [(ep, where[0] if where else first) for ep, where in self._endpoints()]

    def _endpoints(self) -> list[tuple[Endpoint, list[str]]]:
        """(record, servers it is online on) per endpoint: the record of a server it is online
        on, else the one that changed last (its last known state and address)."""
        if len(self.watches) == 1:
            name = self.first.server
            return [(ep, [name] if ep.state == S.ENDPOINT_ONLINE else [])
                    for ep in self.first.state.endpoints.values()]
        merged: dict[str, tuple[Endpoint, list[str]]] = {}
        for watch in self.watches:
            for ep_id, ep in watch.state.endpoints.items():
                online = ep.state == S.ENDPOINT_ONLINE
                seen = merged.get(ep_id)
                if seen is None:
                    merged[ep_id] = (ep, [watch.server] if online else [])
                    continue
                best, where = seen
                if online:
                    where.append(watch.server)
                    if len(where) == 1:
                        merged[ep_id] = (ep, where)
                elif not where and ep.last_change > best.last_change:
                    merged[ep_id] = (ep, where)
        return list(merged.values())

    def remote_ips(self) -> list[dict[str, Any]]:
        return [r.view() for r in sorted(self.state.remote_ips.values(), key=lambda r: r.ip)]

    def recording_meta(self, name: str) -> dict[str, Any] | None:
        """The call a recording belongs to: call_id, client, origin, destination, created,
        server."""
        for watch in self.watches:
            meta = watch.state.recording_calls.get(name)
            if meta:
                return {**meta, "server": watch.server}
        return None

    def recording_live(self, name: str) -> bool:
        """True while Asterisk is still writing this recording."""
        return any(name in w.state.recordings for w in self.watches)

    def history(self, client: str | None = None, since: float | None = None,
                limit: int = 50, server: str | None = None) -> list[dict[str, Any]]:
        return self.store.history(client, since, limit, server=server)

    def outages(self, limit: int = 20) -> list[dict[str, Any]]:
        return self.store.outages(limit)

    def status(self, server: str | None = None) -> dict[str, Any]:
        top = self.watch(server)
        data = self._server_status(top)
        intake = self.intake
        data.update({"uptime": round(time.time() - self.started, 1),
                     "last_event_age": intake.last_event_age() if intake else None,
                     "store": self._store_view(),
                     "servers": {w.server: self._server_status(w) for w in self.watches}})
        if self.registrations is not None:
            data["two_servers"] = self.registrations.view()
        return data

    def _server_status(self, watch: Watch) -> dict[str, Any]:
        resyncer = watch.resyncer
        return {"link": dict(watch.link.link), "state": watch.state.summary(),
                "probe": watch.link.probe.view(), "resync_running": resyncer.running,
                "last_resync": resyncer.last, "outage_open_since": resyncer.outage_started,
                "last_outage": resyncer.last_outage or self._last_saved_outage(watch.server)}

    def _store_view(self) -> dict[str, Any]:
        """Whether SQLite takes writes (a full disk: EngineEffects keeps ended calls)."""
        views = [w.effects.store_view() for w in self.watches if hasattr(w.effects, "store_view")]
        if not views:
            return {"error": "", "unsaved": 0, "dropped": 0}
        kept: dict[str, int] = {}  # what else each server's effects keep (outputs.py)
        for view in views:
            for what, n in (view.get("kept") or {}).items():
                kept[what] = kept.get(what, 0) + n
        return {"error": next((v["error"] for v in views if v["error"]), ""),
                "unsaved": sum(v["unsaved"] for v in views),
                "dropped": sum(v["dropped"] for v in views), "kept": kept}

    def _last_saved_outage(self, server: str) -> dict[str, Any] | None:
        try:
            outages = self.store.outages(1 if len(self.watches) == 1 else 50)
        except sqlite3.Error:  # status must answer even when SQLite cannot
            return None
        if len(self.watches) == 1:
            return next(iter(outages), None)
        return next((o for o in outages if o.get("server") == server), None)

    def stats(self, server: str | None = None) -> dict[str, Any]:
        intake = self.intake
        servers = {w.server: self._server_stats(w) for w in self.watches}
        if server is not None:
            data = dict(servers[self.watch(server).server])
        else:
            data = dict(servers[self.first.server])
            if len(self.watches) > 1:
                data["counters"] = _summed([s["counters"] for s in servers.values()])
                data["continue_pending"] = sum(s["continue_pending"] for s in servers.values())
        data.update({"intake": intake.view() if intake else {},
                     "publish": {"published": self.notifier.published,
                                 "dropped": self.notifier.dropped},
                     "store": self._store_view(), "servers": servers})
        return data

    def _server_stats(self, watch: Watch) -> dict[str, Any]:
        pool = watch.continue_pool
        return {"counters": watch.state.counters.as_dict(), "reader": watch.link.reader_stats,
                "probe": watch.link.probe.view(),
                "continue_pending": pool.pending if pool is not None else 0}


def _summed(dicts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in dicts:
        for name, value in d.items():
            total[name] = total.get(name, 0) + value
    return total
