"""The engine's Effects: SQLite first, then PUB/listeners, the calls log, and REST `continue`.

Order matters: an ended call is in SQLite before anyone hears of it, so a crash between the
two loses a notification, never a history row.

A turn of the loop (the intake drains the events socket: `hold()` ... `release()`, at most
FRAME_BUDGET frames, a few ms) is the unit of output. During it:
- ended calls are kept; at release their history rows and the active-call rows changed in
  the turn go to SQLite in ONE transaction (a commit per call was, with the `continue`s, what
  held the Stasis mix to a third of the plain rate), and only then are they announced (PUB,
  listeners, calls log). So the rule holds per turn: nothing is announced that SQLite lacks.
- the calls-log lines are kept and written as one record (a rotating file handler costs
  ~35 us per record: stat, seek, format twice, flush).
- the `continue`s of channels entering Stasis are kept and handed to the REST pool after the
  commit (rest_pool.py), so Asterisk moves on with a call we already hold in SQLite.
Outside a turn (resync, timers, commands) every output goes at once, in the same order.

Why batching keeps the history exactly-once through kill -9: rows are keyed (server, id) and
written INSERT OR REPLACE, so a call is never two rows. A kill -9 mid-turn loses the turn's
uncommitted rows together with the frames that ended those calls; nothing of them was
announced (not on PUB, not in the log), so to the outside they are exactly like frames still
queued in the events socket, which a kill -9 loses too: the restarted engine's resync ends
what ARI no longer has and adopts what it still has; a call a previous run saved in
`active_calls` and ARI no longer has goes to the history at that resync (prune_active). A
call announced ended is always in SQLite. The ringing/up announcements of a turn go out at once (a lost one is repaired by
the resync like any lost frame); per call, PUB order stays ringing, up, ended.

Active calls are written to SQLite (`active_calls`) on their ringing and up transitions, and
again when a leg joins them (click-to-call leg B, a Dial's leg), so a restarted engine that
adopts their channels again restores their true times, and one that finds them gone files
them as origin -> destination. A call that
rings and ends within one turn is never written there. A kill -9 can lose the writes of the
turn in progress: those calls come back with adoption-time answers, as before.

A full disk (or any SQLite error) loses no write: an ended call's history row, an active-call
row (or its deletion), a new remote IP and a remote IP's last-seen time are kept in memory
(MAX_UNSAVED each, the oldest dropped and counted beyond that), written again every second by
`flush_ips`' timer, and `status` says "store: NOT WRITABLE" with what is kept until all of it
is written. The call's PUB and calls log still go out (at the end of the turn, as always).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from arimonitor import protocol
from arimonitor.ari.rest import AriHttpError
from arimonitor.engine.notifier import Notifier
from arimonitor.engine.state import Call, Channel, Counters, Endpoint, RemoteIp
from arimonitor.engine.store import Store
from arimonitor.keptwrites import MAX_KEPT, KeptWrites

log = logging.getLogger(__name__)

MAX_UNSAVED = MAX_KEPT  # of each kind kept in memory while SQLite cannot be written

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
                 server: str = "", registrations: Any = None) -> None:
        self.store = store
        self.notifier = notifier
        self.counters = counters
        self.continue_channel = continue_channel
        self.calls_log = calls_log
        self.server = server
        # engine/registrations.py, shared by every server's effects: two servers at once warns
        self.registrations = registrations
        self.name_server = False               # several servers: warning lines name theirs
        self.dirty_ips: dict[str, float] = {}  # ip -> last_seen, flushed every second
        self._held: list[str] | None = None    # calls-log lines of the current burst
        self._ended: list[Call] = []           # calls ended in the burst: committed at release
        self._continues: list[str] = []        # channels to continue after the burst's commit
        self._active_dirty: dict[str, Call | None] = {}  # id -> call to write, None: delete
        self._active_saved: set[str] = set()   # ids with a row in active_calls
        # ended calls' history rows SQLite did not take yet (the store is looked up at each
        # write: a test's wrapper decides then whether the disk is full)
        self.unsaved: KeptWrites[dict[str, Any]] = KeptWrites(
            "history rows", lambda view: self.store.save_call(view), MAX_UNSAVED, log)
        self.active_pending = False            # _active_dirty holds rows SQLite refused
        self.ips_unsaved: dict[str, dict[str, Any]] = {}  # new remote IPs SQLite refused
        self.kept_dropped = 0                  # active rows and remote IPs dropped beyond the bound
        self.prune_pending: tuple[set[str], float, str] | None = None  # a refused prune_active
        self.store_error = ""                  # why SQLite cannot be written; "" = fine

    def _call_event(self, what: str, call: Call, **extra: Any) -> None:
        view = call.view()
        view.update(extra)
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
        """The turn is over: one SQLite transaction (the ended calls' history rows and the
        active-call rows changed), then the ended calls are announced (PUB, listeners, calls
        log), then the kept lines are written as one record, then the `continue`s go out."""
        ended, self._ended = self._ended, []
        if ended or self._active_dirty:
            self._commit(ended)
        for call in ended:
            self._call_event("ended", call)
        lines, self._held = self._held, None
        if lines and self.calls_log is not None:
            write_lines(self.calls_log, lines)
        continues, self._continues = self._continues, []
        for channel_id in continues:
            self.continue_channel(channel_id)

    def _active_changed(self, call: Call) -> None:
        self._active_dirty[call.id] = call
        if self._held is None:
            self.flush_active()

    def flush_active(self) -> None:
        """Write the active calls changed since the last flush (one transaction)."""
        self._commit([])

    def _commit(self, ended: list[Call]) -> None:
        """One transaction: the history rows of `ended` and the changed active-call rows.
        A history row SQLite refuses is kept in memory (unsaved) and written again later."""
        views = [call.view() for call in ended]
        dirty = self._active_dirty
        rows, gone = self._take_active()
        if self.unsaved:  # keep the order: older unsaved rows go first
            for view in views:
                self.unsaved.keep(view)
            views = []
        if not (views or rows or gone):
            self.active_pending = False
            return
        try:
            self.store.save_calls(views, rows, gone)
        except sqlite3.Error as exc:
            self._store_failed(exc)
            for view in views:
                self.unsaved.keep(view)
            self._keep_active(dirty, gone)
        else:
            self.active_pending = False
            self._store_took_a_write()

    def _keep_active(self, dirty: dict[str, Call | None], gone: list[tuple[str, str]]) -> None:
        """The active-call rows of a failed commit go back to be written by the next one (a
        newer change of the same call, made since, wins); a deletion is one again."""
        for _server, call_id in gone:
            self._active_saved.add(call_id)
        for call_id, call in dirty.items():
            self._active_dirty.setdefault(call_id, call)
        while len(self._active_dirty) > MAX_UNSAVED:
            self._active_dirty.pop(next(iter(self._active_dirty)))
            self.kept_dropped += 1
        self.active_pending = bool(self._active_dirty)

    def _take_active(self) -> tuple[list[tuple], list[tuple[str, str]]]:
        """The active-call rows to write and to delete since the last commit."""
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
        return rows, gone

    def prune_active(self, keep: set[str], ended: float, reason: str) -> int:
        """After a resync: the rows of calls that are not active any more go to the history.
        Refused (a full disk): done again every second until SQLite takes it (0 now)."""
        self.flush_active()
        self._active_saved &= keep
        try:
            return self.store.prune_active(self.server, keep, ended, reason)
        except sqlite3.Error as exc:
            self._store_failed(exc)
            self.prune_pending = (set(keep), ended, reason)
            return 0

    def _prune_again(self) -> None:
        """A prune SQLite refused: the calls it kept, and those saved since, stay active."""
        keep, ended, reason = self.prune_pending
        keep = keep | self._active_saved | set(self._active_dirty)
        try:
            pruned = self.store.prune_active(self.server, keep, ended, reason)
        except sqlite3.Error as exc:
            self._store_failed(exc)
            return
        self.prune_pending = None
        if pruned:
            log.info("%d call(s) gone while the engine was down filed in the history now that "
                     "SQLite takes writes again", pruned)
        self._store_took_a_write()

    def call_started(self, call: Call) -> None:
        self._active_changed(call)
        self._call_event("ringing", call)

    def call_answered(self, call: Call, resync: bool = False) -> None:
        self._active_changed(call)
        if resync:
            self._call_event("up", call, resync=True)
        else:
            self._call_event("up", call)

    def call_joined(self, call: Call) -> None:
        """A leg joined a call already announced (click-to-call leg B, a Dial's leg): its
        active-call row is written again. A row that knew only leg A ("originate -> A") would
        otherwise be what the history says of a call that ends while the engine is down."""
        if call.id in self._active_saved or self._active_dirty.get(call.id) is not None:
            self._active_changed(call)

    def call_ended(self, call: Call) -> None:
        if call.id in self._active_saved or call.id in self._active_dirty:
            self._active_dirty[call.id] = None
        if self._held is not None:
            self._ended.append(call)  # committed with the turn at release(), then announced
            return
        self._commit([call])
        self._call_event("ended", call)

    def endpoint_state(self, endpoint: Endpoint, old_state: str) -> None:
        body = endpoint.view()
        body["old_state"] = old_state
        body["server"] = self.server
        self.notifier.publish(f"{protocol.TOPIC_ENDPOINT}.{endpoint.state}", body)
        if self.registrations is not None:
            self.registrations.changed(self.server, endpoint.id, endpoint.state, endpoint.last_change)

    def endpoint_address(self, endpoint: Endpoint) -> None:
        body = endpoint.view()
        body["server"] = self.server
        self.notifier.publish(f"{protocol.TOPIC_ENDPOINT}.address", body)

    def remote_ip(self, rip: RemoteIp, new_link: bool) -> None:
        if new_link:
            self.dirty_ips.pop(rip.ip, None)
            self.ips_unsaved.pop(rip.ip, None)
            self._save_remote_ip(rip.view())
        else:
            self.dirty_ips[rip.ip] = rip.last_seen

    def _save_remote_ip(self, view: dict[str, Any]) -> bool:
        try:
            self.store.save_remote_ip(view)
        except sqlite3.Error as exc:
            self._store_failed(exc)
            if view["ip"] not in self.ips_unsaved and len(self.ips_unsaved) >= MAX_UNSAVED:
                self.ips_unsaved.pop(next(iter(self.ips_unsaved)))
                self.kept_dropped += 1
            self.ips_unsaved[view["ip"]] = view
            return False
        return True

    def flush_ips(self) -> int:
        """Every second: the remote IPs' last-seen times, and what SQLite refused before
        (history rows, active-call rows, new remote IPs)."""
        self.save_unsaved()
        if self.active_pending and self._held is None:
            self.flush_active()
        if self.prune_pending is not None and not self.active_pending:
            self._prune_again()
        wrote = 0
        for ip, view in list(self.ips_unsaved.items()):
            if not self._save_remote_ip(view):
                break
            del self.ips_unsaved[ip]
            wrote += 1
        if wrote:
            self._store_took_a_write()
        if not self.dirty_ips:
            return 0
        batch, self.dirty_ips = self.dirty_ips, {}
        try:
            self.store.touch_remote_ips(batch.items())
        except sqlite3.Error as exc:
            self._store_failed(exc)
            for ip, last_seen in batch.items():  # kept: a later sighting may never come
                self.dirty_ips[ip] = max(last_seen, self.dirty_ips.get(ip, last_seen))
        else:
            self._store_took_a_write()
        return len(batch)

    # ---- SQLite not writable (a full disk) ------------------------------------------------

    def _store_failed(self, exc: Exception) -> None:
        if not self.store_error:
            log.error("SQLite not writable (%s): ended calls, active-call rows and remote IPs "
                      "kept in memory (up to %d each) and written when it is again", exc, MAX_UNSAVED)
        self.store_error = str(exc)[:200]

    def save_unsaved(self) -> int:
        """Write the kept history rows, oldest first; how many went."""
        written = self.unsaved.flush(self._store_failed)
        if written:
            self._store_took_a_write(written)
        return written

    def _store_took_a_write(self, kept_written: int = 0) -> None:
        # Only a write that went through says the disk has room again: an idle second proves
        # nothing, and `status` (its exit code, /healthz) must not flap while it is full.
        # The error stays while anything kept is still waiting to be written.
        if self.store_error and not (self.unsaved or self.active_pending or self.ips_unsaved
                                     or self.prune_pending):
            log.warning("SQLite writable again: what was kept is written (%d ended call(s) "
                        "just now), %d dropped meanwhile", kept_written,
                        self.unsaved.dropped + self.kept_dropped)
            self.store_error = ""

    def store_view(self) -> dict[str, Any]:
        return {"error": self.store_error, "unsaved": len(self.unsaved),
                "dropped": self.unsaved.dropped + self.kept_dropped,
                "kept": {"active call rows": len(self._active_dirty) if self.active_pending else 0,
                         "remote IPs": len(self.ips_unsaved) + (len(self.dirty_ips)
                                                                if self.store_error else 0),
                         "ended-while-down filings": int(self.prune_pending is not None)}}

    def stasis_start(self, channel: Channel, event: dict[str, Any]) -> None:
        if channel.claimed_by:
            log.debug("channel %s in Stasis is driven by %s", channel.id, channel.claimed_by)
            return
        # Not ours to drive: back to the dialplan at once, the monitor never holds a call.
        # In a turn: after the turn's commit (release), so the call Asterisk then carries on
        # with is already in SQLite as an active call.
        if self._held is not None:
            self._continues.append(channel.id)
        else:
            self.continue_channel(channel.id)

    def recording(self, call: Call | None, what: str, recording: dict[str, Any]) -> None:
        body = {"name": recording.get("name"), "format": recording.get("format"),
                "target_uri": recording.get("target_uri"), "duration": recording.get("duration"),
                "call_id": call.id if call else None, "client": call.client if call else None,
                "cause": recording.get("cause"), "server": self.server}
        self.notifier.publish(f"{protocol.TOPIC_RECORDING}.{what}", body)

    def warning(self, kind: str, text: str, data: dict[str, Any] | None = None) -> None:
        # with several servers the line says whose (one server's lines stay as they were)
        log.warning("%s: %s%s", kind, text, f" (server {self.server})" if self.name_server else "")
        self.notifier.publish(f"{protocol.TOPIC_WARNING}.{kind}",
                              {"text": text, "server": self.server, **(data or {})})


def dialplan_continuer(pool: Any, counters: Counters) -> Callable[[str], None]:
    """EngineEffects' `continue_channel`: send a channel back to the dialplan, REST on a
    thread of the pool (rest_pool.py, keyed by channel: once, in order), the result counted
    on the loop thread."""

    def continue_channel(channel_id: str) -> None:
        def done(_result: Any, error: BaseException | None) -> None:
            if error is None:
                counters.continued += 1
            elif isinstance(error, AriHttpError) and error.status == 404:
                log.debug("channel %s gone before continue", channel_id)
            else:
                counters.continue_failed += 1
                log.warning("continue of channel %s failed: %s", channel_id, error)

        path = f"/channels/{quote(channel_id, safe='')}/continue"
        pool.submit(channel_id, lambda ari: ari.post(path), done)

    return continue_channel
