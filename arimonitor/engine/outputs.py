"""The engine's Effects: SQLite first, then PUB/listeners, the calls log, and REST `continue`.

Order matters: an ended call is in SQLite before anyone hears of it, so a crash between the
two loses a notification, never a history row.

The calls log is the one output that is deferred: while the intake applies a burst of frames
(`hold()` ... `release()`, one drain of the events socket, a few ms at most), its lines are
kept and then written as one log record: a rotating file handler costs ~35 us per record
(stat, seek, format twice, flush), which at full speed was a fifth of the engine's time.
Outside a burst every line is written at once, as before. The ended call's history row and
PUB are never deferred.

Active calls are written to SQLite (`active_calls`) on their ringing and up transitions, so a
restarted engine that adopts their channels again restores their true times. Those writes are
deferred like the calls log: kept by call id during a burst and written in one transaction at
release (a call that rings and ends within one burst is never written). A kill -9 can lose
the writes of the burst in progress: those calls come back with adoption-time answers, as
before; a row left for a call that ended is pruned after the next resync.

A full disk (or any SQLite error) never loses an ended call's history row: the row is kept in
memory (MAX_UNSAVED, the oldest dropped and counted beyond that), written again every second
by `flush_ips`' timer, and `status` says "store: NOT WRITABLE" until it is written. The
call's PUB and calls log still go out at once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from arimonitor import protocol
from arimonitor.ari.rest import AriHttpError
from arimonitor.engine.notifier import Notifier
from arimonitor.engine.state import Call, Channel, Counters, Endpoint, RemoteIp
from arimonitor.engine.store import Store

log = logging.getLogger(__name__)

MAX_UNSAVED = 10000  # ended calls kept in memory while SQLite cannot be written

_CALL_LINE = "%s call=%s client=%s %s direction=%s cause=%s duration=%.1f billsec=%.1f%s"


def write_lines(logger: logging.Logger, lines: list[str]) -> None:
    """Lines logged at INFO as if one by one, in a single record when the format allows.

    One record: each line after the first is given the same prefix the handler's formatter
    puts before a message (its timestamp), so the file reads exactly as with one record per
    line. Checked on the record itself; any other handler set-up gets one record per line.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    handlers = logger.handlers
    if len(lines) > 1 and len(handlers) == 1 and handlers[0].formatter is not None:
        formatter = handlers[0].formatter
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, "", None, None)
        prefix = formatter.format(record)
        record.msg = "x"
        if formatter.format(record) == prefix + "x" and "\n" not in prefix:
            record.msg = ("\n" + prefix).join(lines)
            logger.handle(record)
            return
    for line in lines:
        logger.info("%s", line)


class EngineEffects:
    def __init__(self, store: Store, notifier: Notifier, counters: Counters,
                 continue_channel: Callable[[str], None], calls_log: logging.Logger | None = None,
                 server: str = "") -> None:
        self.store = store
        self.notifier = notifier
        self.counters = counters
        self.continue_channel = continue_channel
        self.calls_log = calls_log
        self.server = server
        self.dirty_ips: dict[str, float] = {}  # ip -> last_seen, flushed every second
        self._held: list[str] | None = None    # calls-log lines of the current burst
        self._active_dirty: dict[str, Call | None] = {}  # id -> call to write, None: delete
        self._active_saved: set[str] = set()   # ids with a row in active_calls
        self.unsaved: deque[dict[str, Any]] = deque()  # ended calls SQLite did not take yet
        self.unsaved_dropped = 0
        self.store_error = ""                  # why SQLite cannot be written; "" = fine

    def _call_event(self, what: str, call: Call) -> None:
        view = call.view()
        self.notifier.publish(f"{protocol.TOPIC_CALL}.{what}", view)
        if self.calls_log is not None:
            line = _CALL_LINE % (
                what, call.id, call.client or "-", call.line(), call.direction,
                call.hangup_cause if call.hangup_cause is not None else "-", call.duration,
                call.billsec, f" reason={call.end_reason!r}" if call.end_reason else "")
            if self._held is not None:
                self._held.append(line)
            else:
                self.calls_log.info("%s", line)

    def hold(self) -> None:
        """A burst starts: keep calls-log lines until release()."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """The burst is over: write the kept lines (one record), back to writing at once."""
        lines, self._held = self._held, None
        if self._active_dirty:
            self.flush_active()
        if lines and self.calls_log is not None:
            write_lines(self.calls_log, lines)

    def _active_changed(self, call: Call) -> None:
        self._active_dirty[call.id] = call
        if self._held is None:
            self.flush_active()

    def flush_active(self) -> None:
        """Write the active calls changed since the last flush (one transaction)."""
        dirty, self._active_dirty = self._active_dirty, {}
        saved = self._active_saved
        now = time.time()
        rows, gone = [], []
        for call_id, call in dirty.items():
            if call is None:
                if call_id in saved:
                    saved.discard(call_id)
                    gone.append((self.server, call_id))
            else:
                saved.add(call_id)
                rows.append((call.server, call_id, call.created, call.answered, call.client,
                             call.origin, call.destination, call.direction, call.dial_status,
                             json.dumps(sorted(call.channels)), now))
        if rows or gone:
            try:
                self.store.save_active(rows, gone)
            except sqlite3.Error as exc:
                # Only true answer times after a restart depend on these rows: not kept.
                self._store_failed(exc)

    def prune_active(self, keep: set[str], ended: float, reason: str) -> int:
        """After a resync: the rows of calls that are not active any more go to the history."""
        self.flush_active()
        self._active_saved &= keep
        return self.store.prune_active(self.server, keep, ended, reason)

    def call_started(self, call: Call) -> None:
        self._active_changed(call)
        self._call_event("ringing", call)

    def call_answered(self, call: Call) -> None:
        self._active_changed(call)
        self._call_event("up", call)

    def call_ended(self, call: Call) -> None:
        view = call.view()
        if self.unsaved:
            self._keep_unsaved(view)  # keep the order: older unsaved rows go first
        else:
            try:
                self.store.save_call(view)
            except sqlite3.Error as exc:
                self._store_failed(exc)
                self._keep_unsaved(view)
        if call.id in self._active_saved or call.id in self._active_dirty:
            self._active_dirty[call.id] = None
            if self._held is None:
                self.flush_active()
        self._call_event("ended", call)

    def endpoint_state(self, endpoint: Endpoint, old_state: str) -> None:
        body = endpoint.view()
        body["old_state"] = old_state
        self.notifier.publish(f"{protocol.TOPIC_ENDPOINT}.{endpoint.state}", body)

    def endpoint_address(self, endpoint: Endpoint) -> None:
        self.notifier.publish(f"{protocol.TOPIC_ENDPOINT}.address", endpoint.view())

    def remote_ip(self, rip: RemoteIp, new_link: bool) -> None:
        if new_link:
            self.store.save_remote_ip(rip.view())
            self.dirty_ips.pop(rip.ip, None)
        else:
            self.dirty_ips[rip.ip] = rip.last_seen

    def flush_ips(self) -> int:
        """Every second: the remote IPs' last-seen times, and history rows still unsaved."""
        self.save_unsaved()
        if not self.dirty_ips:
            return 0
        batch, self.dirty_ips = self.dirty_ips, {}
        try:
            self.store.touch_remote_ips(batch.items())
        except sqlite3.Error as exc:
            self._store_failed(exc)  # last-seen times: the next sighting writes them again
        return len(batch)

    # ---- SQLite not writable (a full disk) ------------------------------------------------

    def _keep_unsaved(self, view: dict[str, Any]) -> None:
        if len(self.unsaved) == MAX_UNSAVED:
            self.unsaved_dropped += 1
        self.unsaved.append(view)

    def _store_failed(self, exc: Exception) -> None:
        if not self.store_error:
            log.error("SQLite not writable (%s): ended calls kept in memory (up to %d) and "
                      "written when it is again", exc, MAX_UNSAVED)
        self.store_error = str(exc)[:200]

    def save_unsaved(self) -> int:
        """Write the kept history rows, oldest first; how many went."""
        written = 0
        while self.unsaved:
            try:
                self.store.save_call(self.unsaved[0])
            except sqlite3.Error as exc:
                self._store_failed(exc)
                return written
            self.unsaved.popleft()
            written += 1
        if self.store_error:
            log.warning("SQLite writable again: %d kept call(s) written, %d dropped meanwhile",
                        written, self.unsaved_dropped)
            self.store_error = ""
        return written

    def store_view(self) -> dict[str, Any]:
        return {"error": self.store_error, "unsaved": len(self.unsaved),
                "dropped": self.unsaved_dropped}

    def stasis_start(self, channel: Channel, event: dict[str, Any]) -> None:
        if channel.claimed_by:
            log.debug("channel %s in Stasis is driven by %s", channel.id, channel.claimed_by)
            return
        # Not ours to drive: back to the dialplan at once, the monitor never holds a call.
        self.continue_channel(channel.id)

    def recording(self, call: Call | None, what: str, recording: dict[str, Any]) -> None:
        body = {"name": recording.get("name"), "format": recording.get("format"),
                "target_uri": recording.get("target_uri"), "duration": recording.get("duration"),
                "call_id": call.id if call else None, "client": call.client if call else None,
                "cause": recording.get("cause")}
        self.notifier.publish(f"{protocol.TOPIC_RECORDING}.{what}", body)

    def warning(self, kind: str, text: str, data: dict[str, Any] | None = None) -> None:
        log.warning("%s: %s", kind, text)
        self.notifier.publish(f"{protocol.TOPIC_WARNING}.{kind}", {"text": text, **(data or {})})


def dialplan_continuer(worker: Any, rest_call: Callable[..., Any], counters: Counters,
                       ) -> Callable[[str], None]:
    """EngineEffects' `continue_channel`: send a channel back to the dialplan, REST on the
    worker thread, the result counted on the loop thread."""

    def continue_channel(channel_id: str) -> None:
        def done(_result: Any, error: BaseException | None) -> None:
            if error is None:
                counters.continued += 1
            elif isinstance(error, AriHttpError) and error.status == 404:
                log.debug("channel %s gone before continue", channel_id)
            else:
                counters.continue_failed += 1
                log.warning("continue of channel %s failed: %s", channel_id, error)

        worker.submit(lambda: rest_call("continue_in_dialplan", channel_id), done)

    return continue_channel
