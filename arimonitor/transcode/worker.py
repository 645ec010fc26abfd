"""A transcoder worker: PULL jobs, convert one at a time, PUSH results (zguide taskwork2).

Both sockets connect (the engine binds), so workers come and go freely. A heartbeat thread
sends `hello` on its own socket every few seconds, also while a long job runs, so the engine
can tell a busy worker from a dead one. A bad message never stops the worker: with a job id
it gets an error result, without one it is counted and logged.

On SIGTERM the current job is allowed `grace` seconds to finish; after that it is abandoned
between two chunks (temporary file removed, WAV untouched) and an `abandoned` result tells
the engine to give it to another worker without counting a failure.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import zmq

from arimonitor import datatypes as dt
from arimonitor import protocol
from arimonitor.transcode.encoder import Conversion, already_done, convert
from arimonitor.transcode.encoders import Encoder
from arimonitor.transcode.errors import Abandoned, BadJob, FetchFailed, TranscodeError

POLL_MS = 250


def parse_job(body: Any) -> Conversion:
    """The job message, checked; BadJob names the first thing wrong."""
    if not isinstance(body, dict):
        raise BadJob("job is not a JSON object")
    for key in ("job_id", "wav", "mp3"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise BadJob(f"job needs a non-empty string {key!r}")
    bitrate = body.get("bitrate", 32)
    rate = body.get("sample_rate")
    if not isinstance(bitrate, int) or not 8 <= bitrate <= 320:
        raise BadJob(f"bitrate {bitrate!r} is not 8..320 kbit/s")
    if rate is not None and rate not in (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000):
        raise BadJob(f"sample_rate {rate!r} is not an MP3 sample rate")
    tags = body.get("tags") or {}
    if not isinstance(tags, dict):
        raise BadJob("tags must be an object")
    root = body.get("mp3_root")
    mp3 = os.path.normpath(body["mp3"])
    if not mp3.endswith(".mp3") or not os.path.isabs(mp3):
        raise BadJob(f"mp3 {body['mp3']!r} must be an absolute path ending in .mp3")
    if root is not None:
        if not isinstance(root, str) or not os.path.isabs(root):
            raise BadJob("mp3_root must be an absolute path")
        if os.path.commonpath([mp3, os.path.normpath(root)]) != os.path.normpath(root):
            raise BadJob(f"mp3 {mp3} is outside mp3_root {root}")
    return Conversion(job_id=body["job_id"], wav=body["wav"], mp3=mp3, bitrate=bitrate,
                      sample_rate=rate, tags={str(k): str(v) for k, v in tags.items()},
                      delete_wav=body.get("delete_wav") is True, mp3_root=root)


def parse_fetch(body: dict) -> tuple[str, str] | None:
    """(server, recording name) of a job whose WAV is fetched over ARI; None: a local WAV."""
    fetch = body.get("fetch")
    if fetch is None:
        return None
    if not isinstance(fetch, dict) or not isinstance(fetch.get("name"), str) or not fetch["name"]:
        raise BadJob("fetch needs a non-empty string 'name'")
    try:
        return dt.server_name(fetch.get("server") or ""), fetch["name"]
    except ValueError as exc:
        raise BadJob(f"fetch: {exc}") from None


def delete_wav_note(body: dict) -> str | None:
    """A note when `delete_wav` is neither a JSON true nor false: such a job keeps its WAV
    ("no" or "false" as a string must never delete a recording)."""
    value = body.get("delete_wav")
    if value is None or isinstance(value, bool):
        return None
    return f"delete_wav {value!r} is not true or false: WAV kept"


class Worker:
    def __init__(self, name: str, jobs_addr: str, results_addr: str, encoders: Sequence[Encoder],
                 stopper, log: logging.Logger | None = None, *, hello_interval: float = 2.0,
                 grace: float = 5.0, speed: dict[str, float] | None = None,
                 context: zmq.Context | None = None, fetcher: Any = None) -> None:
        self.name = name
        self.jobs_addr = jobs_addr
        self.results_addr = results_addr
        self.encoders = list(encoders)
        self.stopper = stopper
        self.log = log or logging.getLogger(name)
        self.hello_interval = hello_interval
        self.grace = grace
        self.speed = speed or {}
        self.ctx = context or zmq.Context.instance()
        self.fetcher = fetcher  # fetch.Fetcher: the WAVs of a server on another host
        self.busy: str | None = None
        self.done = 0
        self.failed = 0
        self.malformed = 0
        self._stop_seen: float | None = None

    # ---- sockets ----------------------------------------------------------------------------

    def _results_socket(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 2000)  # let the last result leave on a clean stop
        sock.connect(self.results_addr)
        return sock

    def hello(self) -> dict:
        return {"worker": self.name, "pid": os.getpid(), "busy": self.busy, "done": self.done,
                "failed": self.failed, "malformed": self.malformed,
                "encoders": [e.name for e in self.encoders], "speed": self.speed,
                "interval": self.hello_interval}

    def _heartbeat(self, quit_event: threading.Event) -> None:
        sock = self._results_socket()
        try:
            while True:
                try:
                    sock.send_multipart(protocol.transcode_message(protocol.KIND_HELLO, self.hello()),
                                        flags=zmq.NOBLOCK)
                except zmq.Again:
                    pass  # engine away: hellos are not worth queueing
                if quit_event.wait(self.hello_interval):
                    return
        finally:
            sock.close(linger=0)

    # ---- main loop --------------------------------------------------------------------------

    def run(self) -> int:
        jobs = self.ctx.socket(zmq.PULL)
        # prefetch at most one job: a job queued here waits behind a long one
        jobs.setsockopt(zmq.RCVHWM, 1)
        jobs.setsockopt(zmq.LINGER, 0)
        jobs.connect(self.jobs_addr)
        results = self._results_socket()
        quit_event = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(quit_event,), name="hello", daemon=True)
        beat.start()
        poller = zmq.Poller()
        poller.register(jobs, zmq.POLLIN)
        self.log.info("worker %s: jobs %s, results %s, encoders %s", self.name, self.jobs_addr,
                      self.results_addr, ", ".join(f"{n} {s}x" for n, s in self.speed.items()))
        try:
            while not self.stopper.stopping:
                if not dict(poller.poll(POLL_MS)).get(jobs):
                    continue
                try:
                    frames = jobs.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    continue
                self.handle(frames, results.send_multipart)
        finally:
            quit_event.set()
            beat.join(2)
            jobs.close()
            results.close()
        return 0

    def _check(self) -> None:
        """Called between chunks: abandon the job `grace` seconds after a stop request."""
        if not self.stopper.stopping:
            return
        now = time.monotonic()
        if self._stop_seen is None:
            self._stop_seen = now
        if now - self._stop_seen >= self.grace:
            raise Abandoned("worker stopping")

    def handle(self, frames: list[bytes], send: Callable[[list[bytes]], Any]) -> None:
        """One incoming message: send `started` then the result (or nothing if it has no id)."""
        body: Any = None
        try:
            if len(frames) != 2 or frames[0] != protocol.KIND_JOB:
                raise BadJob(f"expected [job, json], got {len(frames)} part(s)")
            body = protocol.loads(frames[1])
            conv = parse_job(body)
            fetch = parse_fetch(body)
        except (BadJob, ValueError) as exc:
            job_id = body.get("job_id") if isinstance(body, dict) else None
            self.malformed += 1
            self.log.warning("malformed job %r: %s", job_id, exc)
            if isinstance(job_id, str):
                send(self._result(body, ok=False, code=BadJob.code, retry=False, reason=str(exc)))
            return
        send(protocol.transcode_message(protocol.KIND_STARTED, {
            "job_id": conv.job_id, "attempt": body.get("attempt", 0), "worker": self.name}))
        send(self._run(conv, body, fetch))

    def _run(self, conv: Conversion, body: dict, fetch: tuple[str, str] | None = None) -> list[bytes]:
        self.busy = conv.job_id
        try:
            if fetch is not None:
                # our copy goes once the MP3 is verified; the server's WAV by delete_wav, after
                conv = dataclasses.replace(conv, delete_wav=True)
                self._fetch(conv, *fetch)
            out = convert(conv, self.encoders, self._check)
        except TranscodeError as exc:
            if not isinstance(exc, Abandoned):
                self.failed += 1
            self.log.warning("job %s failed (%s): %s", conv.job_id, exc.code, exc.reason)
            return self._result(body, ok=False, code=exc.code, retry=exc.retry, reason=exc.reason)
        except Exception as exc:  # one bad job must not end the worker
            self.failed += 1
            self.log.exception("job %s: unexpected error", conv.job_id)
            return self._result(body, ok=False, code="internal", retry=True, reason=f"internal error: {exc}")
        finally:
            self.busy = None
        self.done += 1
        self.log.info("job %s: %s (%.1fs audio) in %.3fs by %s", conv.job_id, Path(out.mp3).name,
                      out.wav_duration, out.seconds, out.encoder)
        notes = list(out.notes)
        note = delete_wav_note(body)
        if note:
            self.log.warning("job %s: %s", conv.job_id, note)
            notes.append(note)
        deleted = out.wav_deleted
        if fetch is not None:
            deleted = body.get("delete_wav") is True and self._delete_fetched(conv, *fetch, notes)
        return self._result(body, ok=True, mp3=out.mp3, duration=out.duration,
                            wav_duration=out.wav_duration, seconds=out.seconds, encoder=out.encoder,
                            wav_deleted=deleted, notes=notes)

    def _fetch(self, conv: Conversion, server: str, name: str) -> None:
        """The WAV from its server, unless here already or converted by an earlier attempt."""
        if os.path.exists(conv.wav) or already_done(conv) is not None:
            return
        if self.fetcher is None:
            raise FetchFailed(f"{name}: this worker cannot fetch from {server}")
        size = self.fetcher.fetch(server, name, conv.wav)
        self.log.info("job %s: fetched %s from %s (%d bytes)", conv.job_id, name, server, size)

    def _delete_fetched(self, conv: Conversion, server: str, name: str, notes: list[str]) -> bool:
        """The server's WAV, deleted only now that the MP3 is verified."""
        kept = self.fetcher.delete(server, name) if self.fetcher is not None else "no fetcher"
        if kept:
            self.log.warning("job %s: %s", conv.job_id, kept)
            notes.append(kept)
        return kept is None

    def _result(self, body: dict, **fields) -> list[bytes]:
        result = {"job_id": body.get("job_id"), "attempt": body.get("attempt", 0), "worker": self.name,
                  "ok": False, "code": "", "reason": "", "retry": False, "mp3": body.get("mp3"),
                  "duration": None, "wav_duration": None, "seconds": None, "encoder": None,
                  "wav_deleted": False, "notes": []}
        result.update(fields)
        return protocol.transcode_message(protocol.KIND_RESULT, result)
