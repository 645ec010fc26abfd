"""Tell the engine how click-to-call is doing: `_report` on the control socket every few seconds.

    session = report.track(cfg, session, servers, stopper, log)   # in process.py

`track` wraps the consumer session (to learn which broker each connection went to and since
when) and starts a daemon thread with its own REQ socket (LINGER 0, poll with a timeout; on
silence the socket is closed and a new one made next time: lazy pirate). The engine keeps the
last report with its arrival time and `status` shows it as seen or stale. A missing engine is
normal (it may be restarting): the thread just tries again at the next interval.

After each report the same thread runs the finals catch-up (`CatchUp`): it asks the engine
(`_c2c_finals`) for the stored final outcome of every request the ledger still holds open, and
hands what comes back to the listener as if it had come over the PUB. A final published while
the consumer was down or reconnecting, or before its SUB joined a restarted engine, reaches
reply_to within one interval, and the call's max_chamadas slot is freed with it. The ledger
keeps the first final, so one seen twice is answered once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import zmq

from arimonitor import protocol
from arimonitor.clicktocall import broker
from arimonitor.control_client import ReportLoop

INTERVAL = 5.0   # seconds; the engine calls a report stale after three missed ones
TIMEOUT = 2.0    # seconds to wait for the engine's answer
CATCHUP_BATCH = 200  # request ids asked about per interval (oldest first)


class CatchUp:
    """Finals the PUB may have missed: the ledger's open requests asked of the engine."""

    def __init__(self, ledger: Any, listener: Any) -> None:
        self.ledger, self.listener = ledger, listener
        self.caught = 0  # finals that came this way and were not already known
        self._after = 0.0  # pages through many open requests, so none waits forever

    def open_requests(self) -> list[str]:
        page = self.ledger.open_requests(after=self._after, limit=CATCHUP_BATCH)
        self._after = page[-1][1] if len(page) == CATCHUP_BATCH else 0.0
        return [request_id for request_id, _created in page]

    def take(self, finals: list[dict[str, Any]]) -> None:
        for body in finals:
            if isinstance(body, dict) and body.get("request_id"):
                before = self.ledger.final(str(body["request_id"]))
                try:
                    self.listener.handle(f"{protocol.TOPIC_C2C}.final", body)
                except sqlite3.Error:
                    return  # a full disk: still open in the ledger, asked again next interval
                self.caught += before is None


class TrackedSession:
    """The consumer session, plus which broker the current connection goes to and since when."""

    def __init__(self, session: Any, servers: Sequence[broker.Server]) -> None:
        self._session = session
        self._servers = servers
        self.server: broker.Server | None = None
        self.connected_since: float | None = None

    def run(self, connection: Any, server_index: int) -> Any:
        self.server, self.connected_since = self._servers[server_index], time.time()
        try:
            return self._session.run(connection, server_index)
        finally:
            self.server, self.connected_since = None, None

    def __getattr__(self, name: str) -> Any:  # consumed, counters, executor...
        return getattr(self._session, name)

    def report(self, process: str = "clicktocall") -> dict[str, Any]:
        server = self.server
        topology = getattr(self._session, "topology", None)
        return {"process": process,
                "broker": broker.describe(server) if server is not None else None,
                "queue": (topology.queue if topology is not None else server.queue) if server else None,
                "connected_since": self.connected_since,
                "counters": dict(getattr(self._session, "counters", {}))}


class Reporter(ReportLoop):
    def __init__(self, address: str, tracked: TrackedSession, stopper: Any, log: logging.Logger,
                 interval: float = INTERVAL, timeout: float = TIMEOUT,
                 context: zmq.Context | None = None, catch_up: CatchUp | None = None) -> None:
        super().__init__("c2c-report", address, stopper, log, interval, timeout, context)
        self.tracked, self.catch_up = tracked, catch_up
        self.sent = self.answered = 0

    def tick(self) -> None:
        if self.send_once():
            self.catch_up_once()

    def send_once(self) -> bool:
        self.sent += 1
        if self.ask("_report", [json.dumps(self.tracked.report())]) is None:
            return False
        self.answered += 1
        return True

    def catch_up_once(self) -> int:
        """Ask for the finals of the ledger's open requests; how many came back."""
        if self.catch_up is None:
            return 0
        ids = self.catch_up.open_requests()
        if not ids:
            return 0
        reply = self.ask("_c2c_finals", [json.dumps(ids)])
        finals = ((reply or {}).get("data") or {}).get("finals") or []
        self.catch_up.take(finals)
        return len(finals)


def track(cfg: Any, session: Any, servers: Sequence[broker.Server], stopper: Any,
          log: logging.Logger, catch_up: CatchUp | None = None) -> TrackedSession:
    """Wrap the session and start reporting it to the engine (and catching up on finals);
    returns the wrapped session."""
    tracked = TrackedSession(session, servers)
    Reporter(cfg["zmq.control"], tracked, stopper, log, catch_up=catch_up).start()
    return tracked
