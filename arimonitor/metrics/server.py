"""The HTTP side: `GET /metrics` (Prometheus text format) and `GET /healthz`, in threads.

    server = MetricsServer("127.0.0.1", 9731, take, user="", password="")
    server.start()          # binds (raises OSError if it cannot), serves in a daemon thread
    server.address          # the bound (host, port)
    server.stop()

`take()` returns (loop snapshot, database part) and is the only way in: the engine's loop
spends a few milliseconds counting, everything else (SQLite reads, rendering, the socket)
happens here. At most MAX_SCRAPES requests are served at once; more get 503, so a storm of
scrapers cannot pile up threads or loop work. With a user and password every request needs
basic auth (compared in constant time); config.py refuses an address beyond loopback without.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.process_collector import ProcessCollector

from arimonitor.metrics import health
from arimonitor.metrics.families import families

log = logging.getLogger(__name__)

MAX_SCRAPES = 4
Take = Callable[[], tuple[dict[str, Any], dict[str, Any]]]


class EngineCollector:
    """A prometheus_client custom collector: reads the engine when scraped, not before."""

    def __init__(self, take: Take) -> None:
        self.take = take

    def collect(self) -> list[Metric]:
        snap, db = self.take()
        return list(families(snap, db))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a client that opens and says nothing does not hold a thread for long

    def do_GET(self) -> None:
        owner = self.server.owner
        if not owner.authorised(self.headers.get("Authorization")):
            self._send(401, b"authentication required\n", "text/plain; charset=utf-8",
                       {"WWW-Authenticate": 'Basic realm="arimonitor"'})
            return
        path = self.path.split("?", 1)[0]
        if path not in ("/metrics", "/healthz"):
            self._send(404, b"not found: try /metrics or /healthz\n", "text/plain; charset=utf-8")
            return
        if not owner.slots.acquire(blocking=False):
            owner.busy += 1
            self._send(503, b"busy: too many scrapes at once\n", "text/plain; charset=utf-8")
            return
        try:
            status, body, kind = owner.metrics() if path == "/metrics" else owner.health()
        finally:
            owner.slots.release()
        self._send(status, body, kind)

    def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics %s: " + format, self.client_address[0], *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: MetricsServer


class MetricsServer:
    def __init__(self, host: str, port: int, take: Take, *, user: str = "", password: str = "") -> None:
        self.host, self.port = host, port
        self.take = take
        self.credentials = (f"{user}:{password}".encode() if user else None)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(EngineCollector(take))
        # CPU, memory, open files of the engine process (Linux /proc; nothing elsewhere).
        ProcessCollector(namespace="arimonitor_engine", registry=self.registry)
        self.slots = threading.BoundedSemaphore(MAX_SCRAPES)
        self.busy = 0
        self.failed = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self._httpd is not None, "not started"
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics-http",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def authorised(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self.credentials)

    def metrics(self) -> tuple[int, bytes, str]:
        try:
            return 200, generate_latest(self.registry), CONTENT_TYPE_LATEST
        except Exception as exc:  # noqa: BLE001 - a scrape that fails is a 503, never a dead thread
            return self._failure("metrics", exc)

    def health(self) -> tuple[int, bytes, str]:
        try:
            snap, _db = self.take()
        except Exception as exc:  # noqa: BLE001 - same: answered 503 with the reason
            return self._failure("health", exc)
        found = health.problems(snap)
        text = "ok\n" if not found else "".join(f"{p}\n" for p in found)
        return (503 if found else 200), text.encode(), "text/plain; charset=utf-8"

    def _failure(self, what: str, exc: Exception) -> tuple[int, bytes, str]:
        # Logged once per kind of failure in a row, then counted (a dead loop would flood).
        self.failed += 1
        if self.failed == 1 or self.failed % 100 == 0:
            log.warning("%s scrape failed (%d so far): %s", what, self.failed, exc)
        return 503, f"unavailable: {exc}\n".encode(), "text/plain; charset=utf-8"
