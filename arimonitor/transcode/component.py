"""The transcoder's engine side: sockets, timers, Asterisk's recording events, console commands.

What it needs from the engine (plugged in by the composition root, one line each):

    tc = TranscodeComponent(cfg, store.connection, notify=notifier.publish,
                            describe=recording_meta, busy=live_recording_wav)
    for m in TranscodeComponent.migrations(): store.migrate(*m)   # before it is built
    tc.start(loop)             # loop.add_socket(sock, handler) + loop.every(seconds, fn)
    tc.attach(handlers)        # handlers.on_event(type, fn(event, t)) for Recording* events
    tc.register_commands(registry)

- `describe(recording_name) -> dict | None`: tags of the call (client, call_id, date, origin,
  destination); None falls back to what the name `client/YYYY-MM-DD/callid` says.
- `busy(wav_path) -> bool`: True while the engine knows that recording is still running
  (rescan leaves it alone).
- `notify(topic, body)`: the engine's PUB (`recording.mp3`, `recording.mp3_failed`).
All calls happen on the engine's loop thread; nothing here blocks (NOBLOCK sends, no REST).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import zmq

from arimonitor import protocol
from arimonitor.commands import render
from arimonitor.keptwrites import KeptWrites
from arimonitor.repeats import RepeatedFailure
from arimonitor.transcode.jobs import JobBook
from arimonitor.transcode.jobtables import MIGRATIONS
from arimonitor.transcode.rescan import Rescanner, ScanReport, tags_for
from arimonitor.zmqbind import bind_private

log = logging.getLogger(__name__)
LATE_KEEP = 2000  # recordings started late remembered until they finish (oldest dropped first)


class Loop(Protocol):
    def add_socket(self, sock: zmq.Socket, handler: Callable[..., Any]) -> None: ...
    def every(self, seconds: float, fn: Callable[[], Any]) -> None: ...


class EventSource(Protocol):
    def on_event(self, event_type: str, fn: Callable[[dict, float], Any]) -> None: ...


class TranscodeComponent:
    def __init__(self, cfg, conn: sqlite3.Connection, *, context: zmq.Context | None = None,
                 notify: Callable[[str, dict], None] | None = None,
                 describe: Callable[[str], dict | None] | None = None,
                 client_name: Callable[[str], str] | None = None,
                 busy: Callable[[str], bool] | None = None, settle: float = 10.0,
                 tick_interval: float = 0.5, backlog_every: float = 10.0,
                 backlog_threshold: int = 50,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.ctx = context or zmq.Context.instance()
        self.describe = describe or (lambda name: None)
        self.client_name = client_name or (lambda client: "")
        self.busy = busy or (lambda wav: False)
        self.tick_interval = tick_interval
        self.settle = settle
        if conn.row_factory is None:
            conn.row_factory = sqlite3.Row
        self.book = JobBook(conn, self._send, deadline=cfg["transcoder.job_deadline"],
                            max_attempts=cfg["transcoder.max_attempts"], clock=clock, notify=notify)
        # every server whose WAVs are on this host has its folder rescanned (fetched ones: their
        # stored recordings are listed over ARI after their resync, wiring.py + stored.py)
        self.local_folders = {folder: server for server in cfg.servers
                              if (folder := cfg.recordings_folder(server)) is not None}
        self.rescanner = Rescanner([*(("recordings", f) for f in self.local_folders),
                                    ("mixmonitor", cfg["paths.mixmonitor"])],
                                   cfg["paths.mp3"], settle=settle, clock=clock)
        self.jobs_sock: zmq.Socket | None = None
        self.results_sock: zmq.Socket | None = None
        self._last_periodic = 0.0
        # name -> why we started it late (started_late), until it is done
        self._started_late: dict[str, str] = {}
        # a progress line in the engine log every `backlog_every` s while the backlog is big
        self.backlog_every = backlog_every
        self.backlog_threshold = backlog_threshold
        self._last_backlog_log = 0.0
        # A full disk (SQLite refuses): the jobs of recordings Asterisk finished and the
        # workers' results wait in memory, in order, and are written when it takes writes again;
        # meanwhile the book sends nothing (a job it cannot mark sent must not go out).
        self.kept_jobs: KeptWrites[tuple] = KeptWrites("recording jobs", self._file_finished, logger=log)
        self.kept_results: KeptWrites[list[bytes]] = KeptWrites("MP3 results", self.book.on_message,
                                                               logger=log)
        self.store_failures = RepeatedFailure(log, "transcode job book write")
        self.store_error = ""
        self._rescan_refused = False  # a rescan SQLite refused: done again at the tick

    @staticmethod
    def migrations() -> tuple[tuple[str, str], ...]:
        """(migration name, SQL) for the engine's Store.migrate, in order."""
        return MIGRATIONS

    # ---- wiring -------------------------------------------------------------------------------

    def bind(self) -> None:
        # Our own output root is made once here; if it vanishes later (an unmounted share) the
        # workers report missing_folder instead of writing MP3s onto the wrong disk.
        try:
            Path(self.cfg["paths.mp3"]).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.error("cannot create the MP3 folder %s: %s", self.cfg["paths.mp3"], exc)
        self.jobs_sock = self.ctx.socket(zmq.PUSH)
        self.jobs_sock.setsockopt(zmq.LINGER, 0)  # unsent jobs are in SQLite, not worth waiting for
        self.jobs_sock.setsockopt(zmq.SNDHWM, 100)
        self.results_sock = self.ctx.socket(zmq.PULL)
        self.results_sock.setsockopt(zmq.LINGER, 0)
        for sock, address in ((self.jobs_sock, self.cfg["zmq.jobs"]),
                              (self.results_sock, self.cfg["zmq.results"])):
            bind_private(sock, address)  # the engine's own: ipc:// in a 0700 folder, file 0600

    def start(self, loop: Loop) -> None:
        if self.jobs_sock is None:
            self.bind()
        loop.add_socket(self.results_sock, self.drain)
        loop.every(self.tick_interval, self.tick)
        interrupted = self.book.interrupt_recordings("arimonitor was down when it should have finished")
        if interrupted:
            log.info("transcoder: %d recording(s) still open from the previous run marked interrupted",
                     interrupted)
        report = self.rescan()
        log.info("transcoder: %d WAV(s) without MP3 queued at start, %d settling",
                 len(report.found), report.settling)

    def attach(self, events: EventSource) -> None:
        events.on_event("RecordingStarted", self.on_recording_started)
        events.on_event("RecordingFinished", self.on_recording_finished)
        events.on_event("RecordingFailed", self.on_recording_failed)

    def register_commands(self, registry) -> None:
        from arimonitor.commands import recordings

        recordings.register(registry, lambda ctx: self)

    def close(self) -> None:
        for sock in (self.jobs_sock, self.results_sock):
            if sock is not None:
                sock.close(linger=0)

    # ---- sockets and timers -------------------------------------------------------------------

    def _send(self, frames: list[bytes]) -> bool:
        try:
            self.jobs_sock.send_multipart(frames, flags=zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def drain(self, *_args: Any) -> int:
        """Read every waiting message (the loop calls this when the socket is readable)."""
        n = 0
        while n < 1000:  # bounded: let the loop serve its other sockets too
            try:
                frames = self.results_sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.on_worker_message(frames)
            n += 1
        return n

    def on_worker_message(self, frames: list[bytes]) -> None:
        if frames and frames[0] == protocol.KIND_HELLO:
            self._guarded(self.book.on_message, frames)  # liveness lives in memory
        else:
            self.kept_results.put(frames)  # applied now, or kept while the disk is full

    def _refused(self, exc: sqlite3.Error) -> None:
        """A write a full disk refused: logged once an episode, then counted."""
        self.store_error = str(exc)[:200]
        self.store_failures.failed(str(exc))

    def _guarded(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return write(*args, **kwargs)
        except sqlite3.Error as exc:
            self._refused(exc)
            return None

    def tick(self) -> None:
        self.kept_jobs.flush()
        self.kept_results.flush()
        if len(self.kept_jobs) or len(self.kept_results):
            return  # still full: the book's own writes would be refused too
        try:
            self.book.tick()
        except sqlite3.Error as exc:
            self._refused(exc)
            return
        if self.store_error:
            self.store_error = ""
            self.store_failures.succeeded()
        now = self.book.clock()
        # files that were still being written get another look once they may have settled
        # (and a rescan a full disk refused, once it has room)
        if ((self.rescanner.waiting or self._rescan_refused)
                and now - self._last_periodic >= self.settle):
            self._last_periodic = now
            self.rescan()
        if now - self._last_backlog_log >= self.backlog_every:
            self._last_backlog_log = now
            self.log_backlog()

    def log_backlog(self) -> str | None:
        backlog = self.book.backlog()
        if backlog < self.backlog_threshold:
            return None
        line = render.backlog_line("transcoder backlog", backlog, self.book.jobs_per_second())
        log.info("%s (%d worker(s) alive)", line, len(self.book.live_workers()))
        return line

    def rescan(self) -> ScanReport:
        report = self.rescanner.scan(self.book.has_job, self.busy)
        self._rescan_refused = False
        for cand in report.found:
            tags = {**cand.tags, "client_name": self.client_name(cand.tags.get("client", ""))}
            try:
                self.book.submit(cand.wav, cand.mp3, tags=tags, source=cand.source,
                                 bitrate=self.cfg["transcoder.bitrate"],
                                 delete_wav=self.cfg["transcoder.delete_wav"],
                                 mp3_root=self.cfg["paths.mp3"], server=self._folder_server(cand.wav))
            except sqlite3.Error as exc:
                self._refused(exc)
                self._rescan_refused = True  # the WAVs still have no job: the tick looks again
                break
        for problem in report.errors:
            log.warning("rescan: %s", problem)
        return report

    def _folder_server(self, wav: str) -> str | None:
        """The server whose folder holds `wav` (None: the MixMonitor folder, anyone's)."""
        for folder, server in self.local_folders.items():
            if not os.path.relpath(wav, folder).startswith(".."):
                return server
        return None

    # ---- Asterisk's recording events ----------------------------------------------------------

    def _meta(self, name: str) -> dict[str, str]:
        meta = self.describe(name) or {}
        guess = tags_for(os.path.join(self.cfg["paths.recordings"], name + ".wav"),
                         self.cfg["paths.recordings"], time.time())
        tags = {k: str(meta.get(k) or guess.get(k) or "") for k in
                ("client", "call_id", "date", "datetime", "origin", "destination")}
        tags["client_name"] = self.client_name(tags["client"])
        return tags

    def started_late(self, name: str, why: str, *, client: str, call_id: str, server: str) -> None:
        """We started `name` after its call's answer (found answered by a resync): the
        recording log says why until it is done, so `recordings` shows the beginning is
        missing. Marked when our record request succeeds, not on its RecordingStarted: right
        after an engine start that event is sometimes missed (the reader's frames of the
        first moments)."""
        if len(self._started_late) >= LATE_KEEP:
            self._started_late.pop(next(iter(self._started_late)))
        self._started_late[name] = why
        self._guarded(self.book.note_recording, name, "recording", client=client, call_id=call_id,
                      reason=why, server=server)

    def _server(self, event: dict) -> str:
        """The Asterisk a recording event came from (contract seam 1: set by the engine)."""
        return event.get("server") or self.cfg.servers[0]

    def on_recording_started(self, event: dict, t: float = 0.0) -> None:
        rec = event["recording"]
        meta = self._meta(rec["name"])
        self._guarded(self.book.note_recording, rec["name"], "recording", client=meta["client"],
                      call_id=meta["call_id"], target=rec.get("target_uri", ""),
                      reason=self._started_late.get(rec["name"], ""), server=self._server(event))

    def on_recording_finished(self, event: dict, t: float = 0.0) -> str | None:
        """A job for the WAV Asterisk just closed; None when it already has one (duplicate event).
        A server whose WAVs are not on this host ([ari:NAME] recordings): the worker fetches it
        over that server's ARI into our fetched/ folder."""
        rec = event["recording"]
        return self.finished(rec["name"], rec.get("format") or "wav", self._server(event),
                             rec.get("target_uri", ""))

    def finished(self, name: str, fmt: str, server: str, target: str = "") -> str | None:
        """The job of a recording `server` has finished (its event, or its stored listing);
        None when it has one already, or when a full disk keeps it for later."""
        # the call's tags now, while the engine still remembers the call
        return self.kept_jobs.put((name, fmt, server, target, self._meta(name)), key=(server, name))

    def _file_finished(self, item: tuple) -> str | None:
        name, fmt, server, target, meta = item
        folder = self.cfg.recordings_folder(server)
        fetch = "" if folder is not None else name
        wav = os.path.join(folder if folder is not None else self.cfg.fetched_folder(server),
                           f"{name}.{fmt}")
        job_id = self.book.submit(wav, os.path.join(self.cfg["paths.mp3"], f"{name}.mp3"),
                                  tags=meta, source="ari", bitrate=self.cfg["transcoder.bitrate"],
                                  delete_wav=self.cfg["transcoder.delete_wav"],
                                  mp3_root=self.cfg["paths.mp3"], server=server, fetch=fetch)
        if job_id is not None:
            self._guarded(self.book.note_recording, name, "done", client=meta["client"],
                          call_id=meta["call_id"], target=target,
                          reason=self._started_late.pop(name, ""), job_id=job_id, server=server)
        return job_id

    def store_view(self) -> dict[str, Any]:
        """For `status` (health.KEPT_VIEWS): what a full disk keeps here, and why."""
        return {"error": self.kept_jobs.error or self.kept_results.error or self.store_error,
                "kept": len(self.kept_jobs) + len(self.kept_results),
                "dropped": self.kept_jobs.dropped + self.kept_results.dropped}

    def has_mp3_or_job(self, server: str, name: str, fmt: str) -> bool:
        """A fetched server's recording already taken care of (its job, or its MP3)."""
        wav = os.path.join(self.cfg.fetched_folder(server), f"{name}.{fmt}")
        return self.book.has_job(wav) or os.path.exists(
            os.path.join(self.cfg["paths.mp3"], f"{name}.mp3"))

    def on_recording_failed(self, event: dict, t: float = 0.0) -> None:
        rec = event["recording"]
        meta = self._meta(rec["name"])
        reason = rec.get("cause") or event.get("cause") or "Asterisk reported RecordingFailed"
        log.warning("recording %s failed: %s", rec["name"], reason)
        self._guarded(self.book.note_recording, rec["name"], "failed", client=meta["client"],
                      call_id=meta["call_id"], target=rec.get("target_uri", ""),
                      reason=str(reason), server=self._server(event))
