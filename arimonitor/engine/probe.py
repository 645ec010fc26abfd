"""REST liveness, apart from the WebSocket: GET /asterisk/info every few seconds, in a thread.

Asterisk's REST side can stall while its WebSocket stays up (asterisk/asterisk#2078), so a
healthy event stream proves nothing about REST. Each result goes to the loop thread through
`report(ok, latency, info, error, auth_failed, http_status, not_asterisk)`; the engine counts,
shows, and warns on a stall. An answer is not a stall: a 401/403 refused the credentials
(auth_failed), another HTTP error (a 500) is Asterisk answering "error" (http_status), an answer
from another server on the port is not Asterisk at all (not_asterisk), each shown as what it is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from arimonitor.ari.rest import (
    AriAuthError,
    AriError,
    AriHttpError,
    AriNotAsterisk,
    AriRest,
)

# report(ok, latency, info, error, auth_failed, http_status, not_asterisk)
Report = Callable[[bool, float, "dict[str, Any] | None", str, bool, "int | None", bool], None]


class Probe:
    def __init__(self, rest: AriRest, interval: Callable[[], float], report: Report,
                 timeout: Callable[[], float]) -> None:
        self.rest = rest
        self.interval = interval
        self.timeout = timeout
        self.report = report
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rest-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def probe_once(self) -> None:
        started = time.monotonic()
        try:
            info = self.rest.asterisk_info(timeout=self.timeout())
        except AriAuthError as exc:
            self.report(False, time.monotonic() - started, None, str(exc), True, exc.status, False)
        except AriHttpError as exc:
            self.report(False, time.monotonic() - started, None, str(exc), False, exc.status,
                        isinstance(exc, AriNotAsterisk))
        except AriError as exc:
            self.report(False, time.monotonic() - started, None, str(exc), False, None, False)
        else:
            self.report(True, time.monotonic() - started, info, "", False, None, False)

    def _run(self) -> None:
        while not self._stop.wait(self.interval()):
            self.probe_once()


class ProbeStats:
    """Kept by the loop thread; shown by `status`/`stats`."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.stalls = 0
        self.last_latency: float | None = None
        self.max_latency = 0.0
        self.last_ok_at = 0.0
        self.last_error = ""
        self.stalled = False
        self.auth_failed = False      # the last answer was 401/403 (probe or resync)
        self.auth_error = ""
        self.http_error = ""          # the last answer was another HTTP error (a 500): not a stall
        self.not_asterisk = False     # the last answer came from something else than Asterisk

    def view(self) -> dict[str, Any]:
        return {"ok": self.ok, "failed": self.failed, "stalls": self.stalls,
                "last_latency_ms": None if self.last_latency is None else round(self.last_latency * 1000, 2),
                "max_latency_ms": round(self.max_latency * 1000, 2),
                "last_ok_at": self.last_ok_at, "last_error": self.last_error,
                "stalled": self.stalled, "auth_failed": self.auth_failed,
                "auth_error": self.auth_error, "http_error": self.http_error,
                "not_asterisk": self.not_asterisk}
