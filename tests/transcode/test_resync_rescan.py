"""A recording that finished while the engine was down gets its job after the resync, with no
operator `recordings rescan`."""

from __future__ import annotations

import os
import time

import zmq

from arimonitor.config import load_config
from arimonitor.engineproc.app import Engine
from arimonitor.transcode.wiring import RecordingComponent
from tests.transcode.audio import make_wav


def _engine_with_an_old_wav(tmp_path):
    """An engine with the recording component and one WAV a minute old, not converted."""
    rec = tmp_path / "rec"
    wav = make_wav(rec / "101" / "2026-11-24" / "c2c-x.wav", 2)
    old = time.time() - 60
    os.utime(wav, (old, old))
    ini = tmp_path / "arimonitor.ini"
    ini.write_text(f"[paths]\nvar = {tmp_path / 'var'}\nrun = {tmp_path / 'run'}\n"
                   f"recordings = {rec}\n")
    (tmp_path / "run").mkdir(mode=0o700)
    cfg = load_config(ini, environ={"ARIMONITOR_ARI_URL": "http://127.0.0.1:9/ari"})
    return wav, Engine(cfg, components=[RecordingComponent], zmq_context=zmq.Context())


def test_a_recording_busy_at_start_is_queued_after_the_resync(tmp_path):
    wav, engine = _engine_with_an_old_wav(tmp_path)
    try:
        component = engine.components[0]
        live = {"yes": True}  # the engine restored the call as still recording
        component.transcode.busy = lambda _wav: live["yes"]
        assert component.transcode.rescan().busy == 1
        assert not component.transcode.book.has_job(str(wav))
        live["yes"] = False  # the resync found the call gone: the recording is over
        engine.notifier.publish("link.resynced", {})
        assert component.transcode.book.has_job(str(wav))
    finally:
        engine.close()


def test_a_recording_still_written_at_the_resync_is_queued_by_the_next_look(tmp_path):
    wav, engine = _engine_with_an_old_wav(tmp_path)
    try:
        component = engine.components[0]
        live = {"yes": True}
        component.transcode.busy = lambda _wav: live["yes"]
        engine.notifier.publish("link.resynced", {})  # still written then: no job
        assert component.rescan_pending and not component.transcode.book.has_job(str(wav))
        live["yes"] = False  # it ends; no RecordingFinished and no resync follow
        component.rescan_if_pending()  # the timer's next look
        assert component.transcode.book.has_job(str(wav))
        assert not component.rescan_pending  # nothing left waiting: the timer does nothing
    finally:
        engine.close()
