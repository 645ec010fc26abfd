"""Recording policy + transcoder pool as one engine component (one line in engineproc/app.py).

    COMPONENTS = [..., RecordingComponent, ...]

- `TranscodeComponent`: its tables, sockets, timers, Recording* events, `jobs`/`recordings`.
- `Recorder` (policy.py): on the engine's `call.up` it decides whether and how the call is
  recorded; on `call.ended` it stops the recording (and hangs up the snoop).
- `WorkerAri`: the Recorder's REST steps, run in order on the engine's REST worker thread
  (never on the loop thread) once the state they need is there (engine/readiness.py: the
  record of a snoop channel waits for its StasisStart); a refusal comes back to the loop and is
  logged in the recording log with its reason.

Who records a click-to-call: the click-to-call flow, never the Recorder. The flow records the
bridge it made (`<client>/<date>/c2c-<rid>`) when the request's `record` or the client's
`gravar` says so (the consumer decides, the appArgs carry it), so the Recorder skips every call
that has a click-to-call leg; one call, one recording.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from arimonitor import protocol
from arimonitor.ari.rest import AriError, AriHttpError, AriRest
from arimonitor.clicktocall.request import parse_channel_id
from arimonitor.engine.api import (
    Cancelled,
    EngineApi,
    RunSteps,
    SendAtOnce,
    Step,
    in_stasis,
)
from arimonitor.engine.api import bridge as need_bridge
from arimonitor.transcode.component import TranscodeComponent
from arimonitor.transcode.policy import SNOOP_PREFIX, CallInfo, Recorder, is_ours
from arimonitor.transcode.stored import StoredLister, is_live

log = logging.getLogger(__name__)
RESCAN_PENDING_EVERY = 5.0  # seconds between looks at recordings a resync left waiting

Submit = Callable[[Callable[[], Any], Callable[[Any, BaseException | None], None]], None]


def _q(part: str) -> str:
    from requests.utils import quote

    return quote(part, safe="")


def _exists(rest: Any, channel_id: str) -> bool:
    try:
        rest.get(f"/channels/{_q(channel_id)}")
    except AriError:
        return False
    return True


class SnoopKept(Exception):
    """The snoop id is in use by a live channel: a recording that must go on."""


class RecordingLive(Exception):
    """Asterisk already records this name (started before an engine restart): kept, not doubled."""


class WorkerAri:
    """`AriRecorder` over ARI REST on a worker thread. Methods only queue work and return.

    `snoop()` is held until the `record_channel()` of the snoop channel; both then go as one
    sequence of steps through the engine's readiness: the record waits for the snoop channel's
    StasisStart (sent before it, Asterisk answers 409 "Channel not in Stasis application";
    issue 16). `refused(name, reason)` is called on the loop thread when a recording could not
    be started; `wanted(name)` false (the call ended meanwhile) drops what has not gone yet.
    """

    def __init__(self, rest: Any, submit: Submit, app: str,
                 refused: Callable[[str, str], None], run_steps: RunSteps | None = None,
                 wanted: Callable[[str], bool] = lambda name: True,
                 started: Callable[[str], None] = lambda name: None) -> None:
        self.rest = rest
        self.submit = submit
        self.app = app
        self.refused = refused
        self.started = started  # loop thread: Asterisk took the record request of `name`
        self.run_steps: RunSteps = run_steps or SendAtOnce(submit)
        self.wanted = wanted
        self._snoops: dict[str, str] = {}  # snoop id -> channel to snoop, until it is recorded
        self._made: set[str] = set()  # snoops a running sequence created (added on the worker)

    def _start(self, name: str, steps: list[Step], snoop: str = "") -> None:
        def done(error: BaseException | None) -> None:
            made = snoop in self._made
            self._made.discard(snoop)
            if error is None:
                self.started(name)
                return
            if isinstance(error, Cancelled):
                return
            if isinstance(error, RecordingLive):
                log.info("recording %s already live in Asterisk: kept, no second one", name)
                return
            if isinstance(error, SnoopKept):
                # our snoop from before an engine restart, still recording (Asterisk answers
                # 500 "already in use"): never cut it; it goes on as the call's recording
                log.info("snoop %s already records %s: kept", snoop, name)
                return
            if made:
                self.hangup(snoop)  # the snoop this sequence made, without its recording
            self.refused(name, str(error)[:300])

        self.run_steps(f"recording {name}", steps, done, lambda: self.wanted(name))

    def _cleanup(self, what: str, work: Callable[[], Any]) -> None:
        def done(_result: Any, error: BaseException | None) -> None:
            # gone with the call is the normal case (Asterisk ends a snoop with its channel)
            if error is not None and getattr(error, "status", 0) != 404:
                log.info("%s: %s", what, error)

        self.submit(work, done)

    def record_bridge(self, bridge_id: str, name: str, fmt: str) -> None:
        params = {"name": name, "format": fmt, "ifExists": "fail"}
        self._start(name, [Step(f"record bridge {bridge_id}", lambda: self.rest.post(
            f"/bridges/{_q(bridge_id)}/record", params=params), needs=(need_bridge(bridge_id),))])

    def snoop(self, channel_id: str, snoop_id: str) -> None:
        self._snoops[snoop_id] = channel_id

    def record_channel(self, channel_id: str, name: str, fmt: str) -> None:
        snooped = self._snoops.pop(channel_id, None)
        rest, app = self.rest, self.app
        params = {"name": name, "format": fmt, "ifExists": "fail"}
        steps = []
        if snooped is not None:
            def snoop() -> None:
                try:
                    rest.post(f"/channels/{_q(snooped)}/snoop",
                              params={"spy": "both", "app": app, "snoopId": channel_id})
                except AriHttpError:
                    if _exists(rest, channel_id):
                        raise SnoopKept(channel_id) from None
                    raise
                self._made.add(channel_id)
            steps.append(Step(f"snoop {snooped}", snoop))
        steps.append(Step(f"record {channel_id}", lambda: rest.post(
            f"/channels/{_q(channel_id)}/record", params=params), needs=(in_stasis(channel_id),)))
        self._start(name, steps, snoop=channel_id if snooped is not None else "")

    def record_unless_live(self, channel_id: str, name: str, fmt: str) -> None:
        """Our snoop channel found by a resync (a previous run made it): the engine may have
        died before its record, or while it recorded. Recorded only if `name` is not live."""
        rest = self.rest
        params = {"name": name, "format": fmt, "ifExists": "fail"}

        def record() -> None:
            if is_live(rest, name):
                raise RecordingLive(name)
            rest.post(f"/channels/{_q(channel_id)}/record", params=params)
        self._start(name, [Step(f"record {channel_id} unless live", record,
                                needs=(in_stasis(channel_id),))])

    def stop_recording(self, name: str) -> None:
        self._cleanup(f"stopping recording {name}",
                      lambda: self.rest.post(f"/recordings/live/{_q(name)}/stop"))

    def hangup(self, channel_id: str) -> None:
        self._snoops.pop(channel_id, None)
        self._cleanup(f"hanging up {channel_id}",
                      lambda: self.rest.delete(f"/channels/{_q(channel_id)}", params={"reason": "normal"}))


class ServersAri:
    """The Recorder's ARI with several Asterisk servers: one WorkerAri per server, made at its
    first call (contract seam 2). The component says which server the Recorder is acting for
    (`serving(server)`, the call's) before each call_answered and call_ended, so a recording
    is started, stopped and its snoop hung up on the Asterisk the call is on."""

    def __init__(self, make: Callable[[str], WorkerAri], first: str) -> None:
        self._make = make
        self._ari: dict[str, WorkerAri] = {}
        self.server = first

    def serving(self, server: str) -> ServersAri:
        self.server = server
        return self

    def at(self, server: str) -> WorkerAri:
        ari = self._ari.get(server)
        if ari is None:
            ari = self._ari[server] = self._make(server)
        return ari

    def record_bridge(self, bridge_id: str, name: str, fmt: str) -> None:
        self.at(self.server).record_bridge(bridge_id, name, fmt)

    def snoop(self, channel_id: str, snoop_id: str) -> None:
        self.at(self.server).snoop(channel_id, snoop_id)

    def record_channel(self, channel_id: str, name: str, fmt: str) -> None:
        self.at(self.server).record_channel(channel_id, name, fmt)

    def record_unless_live(self, channel_id: str, name: str, fmt: str) -> None:
        self.at(self.server).record_unless_live(channel_id, name, fmt)

    def stop_recording(self, name: str) -> None:
        self.at(self.server).stop_recording(name)

    def hangup(self, channel_id: str) -> None:
        self.at(self.server).hangup(channel_id)

    def close(self) -> None:
        for ari in self._ari.values():
            ari.rest.close()


class RecordingComponent:
    """The transcoder pool and the recording policy, plugged into an Engine."""

    def __init__(self, engine: EngineApi) -> None:
        cfg = engine.cfg
        self.engine = engine
        self.cfg = cfg
        self._records: tuple[Any, Mapping[str, bool | None]] = (None, {})
        for migration in TranscodeComponent.migrations():
            database = engine.database(*migration)
        self.ari = ServersAri(self.worker_ari, cfg.servers[0])
        self.recorder = Recorder(self.ari, records=self.records,
                                 default=lambda: cfg["recordings.default_record"],
                                 failed=self.recording_failed)
        self.transcode = TranscodeComponent(cfg, database, notify=engine.publish,
                                            describe=self.describe, busy=self.busy,
                                            client_name=self.client_name)
        self.transcode.attach(engine)
        engine.claim_channels("recording", self.recorder.claims)
        engine.subscribe(protocol.TOPIC_CALL_UP, self.on_call_up)
        engine.subscribe(protocol.TOPIC_CALL_ENDED, self.on_call_ended)
        engine.offer("transcoders", self.transcoders)
        engine.offer("transcode_store", self.transcode.store_view)  # a full disk: status names it
        # After every resync (engine start included) the engine knows which recordings still
        # run: one that finished while the engine was down (no RecordingFinished ever comes)
        # is no longer busy, so a rescan gives it its job without an operator's `rescan`.
        engine.subscribe(protocol.TOPIC_LINK_RESYNCED, self.on_resynced)
        # A recording still written at that resync (busy, or too new to judge) may get no
        # RecordingFinished of its own (the previous engine started it, the event was lost in
        # the restart): look again every few seconds until none is left waiting.
        self.rescan_pending = False
        # A server whose WAVs are fetched has no folder here: after its resync its stored
        # recordings are listed over its ARI instead (a look again while one is still written).
        self.fetched = {s for s in cfg.servers if cfg.recordings_folder(s) is None}
        self.stored = StoredLister(lambda server: self.ari.at(server).rest, engine.submit_rest,
                                   ours=lambda server, name: is_ours(name, self._further(server)),
                                   known=self.transcode.has_mp3_or_job,
                                   live=engine.recording_live,
                                   queue=lambda server, name, fmt: self.transcode.finished(name, fmt, server))
        engine.every(RESCAN_PENDING_EVERY, self.rescan_if_pending)

    def worker_ari(self, server: str) -> WorkerAri:
        """A server's recording REST: its own session, used only on the REST worker."""
        cfg = self.cfg.for_server(server)

        def run_steps(name: str, steps: Any, done: Any, alive: Any = None) -> None:
            # the snoop channel the steps wait for is created on this server
            self.engine.run_steps(name, steps, done, alive, server=server)
        return WorkerAri(AriRest.from_config(cfg), self.engine.submit_rest, cfg["ari.app"],
                         refused=lambda name, reason: self.recorder.refused(name, reason),
                         run_steps=run_steps, wanted=lambda name: self.recorder.wants(name),
                         started=lambda name: self.recording_started(name, server))

    def on_resynced(self, _topic: str, body: dict[str, Any]) -> None:
        if body.get("server") in self.fetched:
            self.stored.look(body["server"])
        report = self.transcode.rescan()
        self.rescan_pending = bool(report.busy or report.settling)
        if report.found:
            log.info("recordings after resync: %d WAV(s) without MP3 queued", len(report.found))

    def rescan_if_pending(self) -> None:
        if self.rescan_pending:
            self.on_resynced("transcode.rescan_pending", {})
        for server in sorted(self.stored.pending):
            self.stored.look(server)

    # ---- engine life ----------------------------------------------------------------------------

    @property
    def book(self) -> Any:
        """The job book, for `status` (transcoders alive) as well as `jobs`."""
        return self.transcode.book

    def register_commands(self, registry: Any) -> None:
        self.transcode.register_commands(registry)

    def transcoders(self) -> dict[str, Any]:
        """For `status` and /metrics: the workers heard from lately, every one ever heard
        from, and how many times one was declared gone (its jobs resent)."""
        book = self.transcode.book
        alive = book.live_workers()
        return {"alive": len(alive), "known": len(book.workers),
                "workers": sorted(w.name for w in alive),
                "gone": int(book.counters.get("workers_gone", 0)),
                "stored": dict(self.stored.counters)}

    def start(self) -> None:
        self.transcode.start(self.engine)

    def close(self) -> None:
        self.transcode.close()
        self.ari.close()

    # ---- what the parts need from the engine ----------------------------------------------------

    def records(self) -> Mapping[str, bool | None]:
        """client id -> gravar, rebuilt only when the engine swapped its tables (reload)."""
        tables = self.engine.tables()
        if tables is not self._records[0]:
            clients = getattr(tables, "clients", None) or {}
            self._records = (tables, {cid: c.record for cid, c in clients.items()})
        return self._records[1]

    def describe(self, name: str) -> dict | None:
        return self.recorder.describe(name) or self.engine.recording_meta(name)

    def client_name(self, client: str) -> str:
        """nome= of the client in __CLIENTES__.DEF ("" when unknown): the MP3's artist/album."""
        record = (getattr(self.engine.tables(), "clients", None) or {}).get(client)
        return getattr(record, "name", "") or ""

    def busy(self, wav: str) -> bool:
        root = self.cfg["paths.recordings"]
        rel = os.path.relpath(wav, root)
        if rel.startswith(".."):
            return False  # MixMonitor folder: not Asterisk's ARI recordings
        return self.engine.recording_live(os.path.splitext(rel)[0])

    def recording_started(self, name: str, server: str) -> None:
        """Our record request went through; one of a call found answered is marked late."""
        meta = self.recorder.describe(name) or {}
        if meta.get("late"):
            self.transcode.started_late(name, meta["late"], client=meta.get("client", ""),
                                        call_id=meta.get("call_id", ""), server=server)

    def recording_failed(self, name: str, reason: str) -> None:
        meta = self.describe(name) or {}
        self.transcode.book.note_recording(name, "failed", client=str(meta.get("client") or ""),
                                           call_id=str(meta.get("call_id") or ""), reason=reason)

    # ---- calls ----------------------------------------------------------------------------------

    def call_info(self, body: dict) -> CallInfo | None:
        """What the policy needs of an answered call; None for calls it must leave alone."""
        call = self.engine.call(body.get("id", ""), body.get("server"))
        if call is None:
            return None
        channels = call["channel_views"]
        snoop = ""
        for ch in channels:
            if ch["claimed_by"] == "clicktocall" or parse_channel_id(ch["id"]) is not None:
                return None  # the click-to-call flow records its own bridge
            if ch["id"].startswith(SNOOP_PREFIX):
                # our snoop from before an engine restart: recording, or made and never
                # recorded (killed between the two); the policy asks Asterisk which
                snoop = ch["id"]
        watched = [ch for ch in channels if not ch["snoop"]]
        if not watched:
            return None
        first = next((ch for ch in watched if ch["id"] == call["id"]), watched[0])
        return CallInfo(id=call["id"], client=call["client"],
                        answered=call["answered"] or body.get("t") or 0.0,
                        origin=call["origin"], destination=call["destination"], channel=first["id"],
                        server=self._further(call.get("server")),
                        late=bool(body.get("resync")), snoop=snoop)

    def _further(self, server: str | None) -> str:
        """A further server's name; "" for the first (its names stay as they always were)."""
        return "" if not server or server == self.cfg.servers[0] else server

    def on_call_up(self, _topic: str, body: dict) -> None:
        info = self.call_info(body)
        if info is not None:
            self.ari.serving(info.server or self.cfg.servers[0])
            self.recorder.call_answered(info)

    def on_call_ended(self, _topic: str, body: dict) -> None:
        call_id = body.get("id")
        if call_id:
            server = self._further(body.get("server"))
            self.ari.serving(server or self.cfg.servers[0])
            self.recorder.call_ended(call_id, server)
