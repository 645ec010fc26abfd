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


def test_a_recording_busy_at_start_is_queued_after_the_resync(tmp_path):
    rec = tmp_path / "rec"
    wav = make_wav(rec / "101" / "2026-11-24" / "c2c-x.wav", 2)
    old = time.time() - 60
    os.utime(wav, (old, old))
    ini = tmp_path / "arimonitor.ini"
    ini.write_text(f"[paths]\nvar = {tmp_path / 'var'}\nrun = {tmp_path / 'run'}\n"
                   f"recordings = {rec}\n")
    (tmp_path / "run").mkdir(mode=0o700)
    cfg = load_config(ini, environ={"ARIMONITOR_ARI_URL": "http://127.0.0.1:9/ari"})
    engine = Engine(cfg, components=[RecordingComponent], zmq_context=zmq.Context())
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
