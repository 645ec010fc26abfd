"""Tell the engine how click-to-call is doing: `_report` on the control socket every few seconds.

    session = report.track(cfg, session, servers, stopper, log)   # in process.py

`track` wraps the consumer session (to learn which broker each connection went to and since
when) and starts a daemon thread with its own REQ socket (LINGER 0, poll with a timeout; on
silence the socket is closed and a new one made next time: lazy pirate). The engine keeps the
last report with its arrival time and `status` shows it as seen or stale. A missing engine is
normal (it may be restarting): the thread just tries again at the next interval.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import zmq

from arimonitor import protocol
from arimonitor.clicktocall import broker

INTERVAL = 5.0   # seconds; the engine calls a report stale after three missed ones
TIMEOUT = 2.0    # seconds to wait for the engine's answer


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


class Reporter(threading.Thread):
    def __init__(self, address: str, tracked: TrackedSession, stopper: Any, log: logging.Logger,
                 interval: float = INTERVAL, timeout: float = TIMEOUT,
                 context: zmq.Context | None = None) -> None:
        super().__init__(name="c2c-report", daemon=True)
        self.address, self.tracked, self.stopper, self.log = address, tracked, stopper, log
        self.interval, self.timeout = interval, timeout
        self.context = context or zmq.Context.instance()
        self.sent = self.answered = 0
        self._sock: zmq.Socket | None = None

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            self._sock = self.context.socket(zmq.REQ)
            self._sock.setsockopt(zmq.LINGER, 0)
            self._sock.connect(self.address)
        return self._sock

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def send_once(self) -> bool:
        sock = self._socket()
        req_id = uuid.uuid4().hex
        sock.send(protocol.request(req_id, "_report", [json.dumps(self.tracked.report())]))
        self.sent += 1
        if not sock.poll(self.timeout * 1000):
            self._drop()  # a REQ that got no answer cannot send again: start afresh
            return False
        reply = protocol.loads(sock.recv())
        if reply.get("id") != req_id or reply.get("status") != protocol.STATUS_OK:
            self.log.warning("engine refused the click-to-call report: %s", reply.get("reason"))
            return False
        self.answered += 1
        return True

    def run(self) -> None:
        try:
            while True:
                try:
                    self.send_once()
                except (zmq.ZMQError, ValueError) as exc:
                    self.log.debug("report to the engine failed: %s", exc)
                    self._drop()
                if self.stopper.wait(self.interval):
                    return
        finally:
            self._drop()


def track(cfg: Any, session: Any, servers: Sequence[broker.Server], stopper: Any,
          log: logging.Logger) -> TrackedSession:
    """Wrap the session and start reporting it to the engine; returns the wrapped session."""
    tracked = TrackedSession(session, servers)
    Reporter(cfg["zmq.control"], tracked, stopper, log).start()
    return tracked
