"""REST liveness, apart from the WebSocket: GET /asterisk/info every few seconds, in a thread.

Asterisk's REST side can stall while its WebSocket stays up (asterisk/asterisk#2078), so a
healthy event stream proves nothing about REST. Anything but a quick 200 is a problem, named
as what it is (issue 16: during `core restart now` REST answers 503 "Shutdown in progress" for
about a second while the WebSocket is still up, then refuses connections, then answers 503
"Asterisk not booted"):

| kind        | what REST did                       | status shows (commands/engine_state.py)  |
|-------------|-------------------------------------|------------------------------------------|
| auth        | 401/403                             | AUTH FAILED                              |
| not_asterisk| an answer from another server       | NOT ASTERISK (check [ari] url)           |
| http        | another HTTP error (503, 500...)    | ERROR - HTTP 503 shutting down (...)     |
| refused     | nothing listens                     | DOWN - connection refused                |
| unavailable | connection reset, DNS, other        | DOWN - connection reset                  |
| no_answer   | no answer within ari.rest_timeout   | STALLED - no answer within 5 s           |
| slow        | a 200 slower than the stall limit   | STALLED - slow answer (3.10 s)           |

A probe still waiting longer than the stall limit shows as STALLED at once (`in_flight_since`),
so `status` sees a stall within one probe interval, not after the request's own timeout. The
reader losing its WebSocket wakes the probe (`wake()`), so an Asterisk going away is read at
once rather than at the next interval. Each result goes to the loop thread through
`report(ok, latency, info, error, auth_failed, http_status, kind, reason)`.
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
    AriUnavailable,
)

AUTH, HTTP, REFUSED, UNAVAILABLE, NO_ANSWER, SLOW, NOT_ASTERISK = (
    "auth", "http", "refused", "unavailable", "no_answer", "slow", "not_asterisk")
STALLS = (NO_ANSWER, SLOW)

# report(ok, latency, info, error, auth_failed, http_status, kind, reason)
Report = Callable[..., None]


def classify(exc: AriError) -> tuple[str, int | None, str]:
    """(kind, HTTP status or None, one-line reason) of a failed probe."""
    if isinstance(exc, AriNotAsterisk):  # a wrong [ari] url, not a password nor an outage
        return NOT_ASTERISK, exc.status, str(exc)[:200]
    if isinstance(exc, AriAuthError):
        return AUTH, exc.status, f"HTTP {exc.status}: ARI refused user {exc.user!r}"
    if isinstance(exc, AriHttpError):
        body = exc.body
        detail = str(body.get("message") or body.get("error") or "") if isinstance(body, dict) else str(body)
        if exc.status == 503 and "shutdown in progress" in detail.lower():
            return HTTP, 503, f"HTTP 503 shutting down ({detail})"
        return HTTP, exc.status, f"HTTP {exc.status} {detail}".strip()[:200]
    if isinstance(exc, AriUnavailable):
        kind = {"refused": REFUSED, "timeout": NO_ANSWER}.get(exc.kind, UNAVAILABLE)
        return kind, None, exc.reason[:200]
    return UNAVAILABLE, None, str(exc)[:200]


class Probe:
    def __init__(self, rest: AriRest, interval: Callable[[], float], report: Report,
                 timeout: Callable[[], float], stats: ProbeStats | None = None) -> None:
        self.rest = rest
        self.interval = interval
        self.timeout = timeout
        self.report = report
        self.stats = stats
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rest-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Probe now (any thread): the WebSocket just dropped, REST is worth a look at once."""
        self._wake.set()

    def probe_once(self) -> None:
        started = time.monotonic()
        if self.stats is not None:
            # The one ProbeStats field this thread writes (one float: safe to read anywhere).
            self.stats.in_flight_since = time.time()
        try:
            info = self.rest.asterisk_info(timeout=self.timeout())
        except AriError as exc:
            kind, status, reason = classify(exc)
            self.report(False, time.monotonic() - started, None, str(exc)[:300], kind == AUTH,
                        status, kind, reason)
        else:
            self.report(True, time.monotonic() - started, info, "", False, None, "", "")
        finally:
            if self.stats is not None:
                self.stats.in_flight_since = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval())
            self._wake.clear()
            if self._stop.is_set():
                return
            self.probe_once()


class ProbeStats:
    """Kept by the loop thread; shown by `status`/`stats`."""

    def __init__(self, stall_after: float = 2.0) -> None:
        self.stall_after = stall_after
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
        self.not_asterisk = False     # a resync's answer came from another server (before a probe)
        self.problem_kind = ""        # "" while REST answers 200 in time; else a kind above
        self.problem = ""             # one line: "HTTP 503 shutting down (...)", "connection refused"
        self.problem_status: int | None = None
        self.problem_since = 0.0
        self.in_flight_since: float | None = None  # written by the probe thread (epoch)

    def note(self, kind: str, status: int | None, reason: str, now: float) -> bool:
        """The latest probe's finding; True when it starts a new problem (or another kind)."""
        changed = kind != self.problem_kind
        if changed:
            self.problem_since = now if kind else 0.0
        self.problem_kind, self.problem_status, self.problem = kind, status, reason
        self.http_error = reason if kind == HTTP else ""
        self.stalled = kind in STALLS
        return changed and bool(kind)

    def current(self, now: float | None = None) -> tuple[str, int | None, str, float]:
        """(kind, status, reason, since), a probe waiting past the stall limit included."""
        waiting = self.in_flight_since
        now = time.time() if now is None else now
        if not self.problem_kind and waiting is not None and now - waiting > self.stall_after:
            return NO_ANSWER, None, f"no answer for {now - waiting:.1f} s yet", waiting
        return self.problem_kind, self.problem_status, self.problem, self.problem_since

    def view(self) -> dict[str, Any]:
        kind, status, reason, since = self.current()
        return {"ok": self.ok, "failed": self.failed, "stalls": self.stalls,
                "last_latency_ms": None if self.last_latency is None else round(self.last_latency * 1000, 2),
                "max_latency_ms": round(self.max_latency * 1000, 2),
                "last_ok_at": self.last_ok_at, "last_error": self.last_error,
                "stalled": self.stalled or kind in STALLS, "auth_failed": self.auth_failed,
                "auth_error": self.auth_error, "http_error": self.http_error,
                "problem": reason, "problem_kind": kind, "problem_status": status,
                "problem_since": since or None,
                "not_asterisk": kind == NOT_ASTERISK or (self.not_asterisk and not kind)}

