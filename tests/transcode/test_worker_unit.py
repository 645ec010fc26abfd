"""Worker message handling, rescan rules and console commands, without worker processes."""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from arimonitor import protocol
from arimonitor.commands.registry import Registry
from arimonitor.config import load_config
from arimonitor.process import Stopper
from arimonitor.transcode.component import TranscodeComponent
from arimonitor.transcode.encoders import LameEncoder
from arimonitor.transcode.jobtables import create_tables
from arimonitor.transcode.rescan import Rescanner
from arimonitor.transcode.worker import Worker
from tests.transcode.audio import make_wav


def worker(stopper=None, grace=5.0) -> Worker:
    return Worker("w", "inproc://j", "inproc://r", [LameEncoder()], stopper or Stopper(), grace=grace)


def run(w: Worker, frames: list[bytes]) -> list[tuple[bytes, dict]]:
    out: list[list[bytes]] = []
    w.handle(frames, out.append)
    return [(f[0], json.loads(f[1])) for f in out]


def job(tmp: Path, **kw) -> dict:
    return {"job_id": "j1", "attempt": 1, "wav": str(tmp / "a.wav"), "mp3": str(tmp / "mp3" / "a.mp3"),
            "mp3_root": str(tmp / "mp3"), "bitrate": 32, "tags": {"client": "101"}, **kw}


def test_a_job_gets_started_then_result(tmp_path):
    make_wav(tmp_path / "a.wav", 2)
    (tmp_path / "mp3").mkdir()
    replies = run(worker(), protocol.transcode_message(protocol.KIND_JOB, job(tmp_path)))
    assert [k for k, _ in replies] == [protocol.KIND_STARTED, protocol.KIND_RESULT]
    res = replies[1][1]
    assert res["ok"] and res["attempt"] == 1 and res["encoder"] == "lameenc" and res["worker"] == "w"


@pytest.mark.parametrize("frames, answered", [
    ([b"job"], False),
    ([b"job", b"not json"], False),
    ([b"job", b"[1,2]"], False),
    ([b"nope", b"{}"], False),
    ([b"job", json.dumps({"job_id": "j9"}).encode()], True),  # no wav/mp3
    ([b"job", json.dumps({"job_id": "j9", "wav": "/a.wav", "mp3": "/x/a.mp3", "bitrate": 9999}).encode()], True),
    ([b"job", json.dumps({"job_id": "j9", "wav": "/a.wav", "mp3": "/etc/../tmp/a.mp3",
                          "mp3_root": "/srv/mp3"}).encode()], True),  # outside its root
    ([b"job", json.dumps({"job_id": "j9", "wav": "/a.wav", "mp3": "rel.mp3"}).encode()], True),
])
def test_malformed_jobs_never_crash(frames, answered):
    w = worker()
    replies = run(w, frames)
    assert w.malformed == 1
    if answered:
        assert len(replies) == 1 and replies[0][1]["code"] == "bad_job" and replies[0][1]["job_id"] == "j9"
        assert replies[0][1]["retry"] is False
    else:
        assert replies == []


def test_error_result_carries_code_and_retry(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF junk")
    (tmp_path / "mp3").mkdir()
    res = run(worker(), protocol.transcode_message(protocol.KIND_JOB, job(tmp_path)))[-1][1]
    assert (res["ok"], res["code"], res["retry"]) == (False, "corrupt_wav", False)
    assert "not a RIFF/WAVE" in res["reason"]


def test_stop_abandons_after_grace_and_finishes_within_it(tmp_path):
    make_wav(tmp_path / "a.wav", 60)
    (tmp_path / "mp3").mkdir()
    stopper = Stopper()
    stopper.stop("test")
    res = run(worker(stopper, grace=0.0), protocol.transcode_message(protocol.KIND_JOB, job(tmp_path)))[-1][1]
    assert res["code"] == "abandoned" and res["retry"] is True
    assert not (tmp_path / "mp3" / "a.mp3").exists() and (tmp_path / "a.wav").exists()
    res = run(worker(stopper, grace=30.0), protocol.transcode_message(protocol.KIND_JOB, job(tmp_path)))[-1][1]
    assert res["ok"] is True


def test_rescan_skips_files_being_written_with_mp3_or_job(tmp_path):
    rec, mix, mp3 = tmp_path / "rec", tmp_path / "mix", tmp_path / "mp3"
    old = time.time() - 60
    for wav in (make_wav(rec / "101" / "2026-11-24" / "c1.wav", 1), make_wav(rec / "done.wav", 1),
                make_wav(rec / "queued.wav", 1), make_wav(mix / "q-200-300.WAV", 1)):
        os.utime(wav, (old, old))
    (mp3).mkdir()
    (mp3 / "done.mp3").write_bytes(b"x")
    fresh = make_wav(rec / "fresh.wav", 1)  # just written
    clock = [time.time()]
    scanner = Rescanner([("recordings", str(rec)), ("mixmonitor", str(mix))], str(mp3), settle=10,
                        clock=lambda: clock[0])
    report = scanner.scan(lambda wav: wav.endswith("queued.wav"))
    found = {Path(c.wav).name: c for c in report.found}
    assert set(found) == {"c1.wav", "q-200-300.WAV"}
    assert (report.has_mp3, report.has_job, report.settling) == (1, 1, 1)
    when = datetime.datetime.fromtimestamp(int(old)).isoformat()   # the WAV's own time
    assert found["c1.wav"].tags == {"client": "101", "date": "2026-11-24", "call_id": "c1", "datetime": when}
    assert found["c1.wav"].mp3 == str(mp3 / "101" / "2026-11-24" / "c1.mp3")
    assert found["q-200-300.WAV"].mp3 == str(mp3 / "mixmonitor" / "q-200-300.mp3")
    # the fresh file keeps growing: still not taken, even once it is old enough
    with open(fresh, "ab") as fh:
        fh.write(b"\0" * 1600)
    clock[0] += 11
    assert [c.wav for c in scanner.scan(lambda wav: False).found if "fresh" in c.wav] == []
    clock[0] += 11  # unchanged since the last scan and quiet for 10 s: taken
    assert [Path(c.wav).name for c in scanner.scan(lambda wav: False).found if "fresh" in c.wav] == ["fresh.wav"]


@pytest.fixture
def component(tmp_path):
    ini = tmp_path / "a.ini"
    ini.write_text(f"[paths]\nvar = {tmp_path / 'var'}\n")
    cfg = load_config(ini)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    create_tables(conn)
    tc = TranscodeComponent(cfg, conn, settle=0.0)
    yield tc
    tc.close()


def test_recording_events_and_console_commands(component):
    registry = Registry()
    component.register_commands(registry)
    name = "101/2026-11-24/1732480000.7"
    started = {"type": "RecordingStarted", "recording": {"name": name, "format": "wav", "target_uri": "bridge:b"}}
    finished = {**started, "type": "RecordingFinished"}
    component.on_recording_started(started)
    assert component.on_recording_finished(finished) is not None
    assert component.on_recording_finished(finished) is None  # Asterisk sends it twice
    component.on_recording_failed({"type": "RecordingFailed", "recording": {
        "name": "102/2026-11-24/9.9", "format": "wav", "state": "failed", "cause": "disk full"}})
    reply = registry.dispatch({"id": "1", "cmd": "recordings", "args": ["102"]}, None)
    assert reply["status"] == "ok" and "disk full" in reply["text"]
    assert reply["data"]["recordings"][0]["state"] == "failed"
    reply = registry.dispatch({"id": "2", "cmd": "jobs", "args": []}, None)
    assert reply["data"]["pending"] == 1 and reply["text"].startswith("PENDING")
    assert reply["text"].splitlines()[2].split()[0] == "1" and "backlog 1 jobs" in reply["text"]
    job = component.book.jobs()[0]
    assert job["client"] == "101" and job["call_id"] == "1732480000.7"
    assert job["mp3"].endswith("mp3/101/2026-11-24/1732480000.7.mp3")
    reply = registry.dispatch({"id": "3", "cmd": "recordings", "args": ["retry", "nope"]}, None)
    assert reply["status"] == "error" and reply["code"] == protocol.E_NOT_FOUND
    reply = registry.dispatch({"id": "4", "cmd": "recordings", "args": ["rescan"]}, None)
    assert reply["status"] == "ok" and "queued 0" in reply["text"]
    reply = registry.dispatch({"id": "5", "cmd": "jobs", "args": ["--state", "pending"]}, None)
    assert job["job_id"] in reply["text"]
    reply = registry.dispatch({"id": "6", "cmd": "recordings", "args": ["a", "b"]}, None)
    assert reply["code"] == protocol.E_BAD_ARGUMENTS


@pytest.mark.parametrize("value", ["no", "false", "yes", 1, [True]])
def test_delete_wav_must_be_a_json_true_anything_else_keeps_the_wav(tmp_path, value):
    make_wav(tmp_path / "a.wav", 1)
    (tmp_path / "mp3").mkdir()
    replies = run(worker(), protocol.transcode_message(protocol.KIND_JOB, job(tmp_path, delete_wav=value)))
    res = replies[-1][1]
    assert res["ok"] and not res["wav_deleted"] and (tmp_path / "a.wav").exists()
    assert any("delete_wav" in note and "WAV kept" in note for note in res["notes"]), res["notes"]


@pytest.mark.parametrize("value, deleted", [(True, True), (False, False)])
def test_delete_wav_true_deletes_false_keeps_without_a_note(tmp_path, value, deleted):
    make_wav(tmp_path / "a.wav", 1)
    (tmp_path / "mp3").mkdir()
    replies = run(worker(), protocol.transcode_message(protocol.KIND_JOB, job(tmp_path, delete_wav=value)))
    res = replies[-1][1]
    assert res["ok"] and res["wav_deleted"] is deleted
    assert (tmp_path / "a.wav").exists() is not deleted
    assert not any("delete_wav" in note for note in res["notes"])


def test_a_full_disk_keeps_finished_recordings_and_results_until_sqlite_takes_them(tmp_path):
    from arimonitor import protocol
    from tests.transcode.refusing import RefusingDisk

    ini = tmp_path / "a.ini"
    ini.write_text(f"[paths]\nvar = {tmp_path / 'var'}\n")
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    create_tables(conn)
    disk = RefusingDisk(conn)
    tc = TranscodeComponent(load_config(ini), disk, settle=0.0)
    try:
        name = "101/2026-11-24/1732480000.7"
        finished = {"type": "RecordingFinished", "recording": {"name": name, "format": "wav"}}
        disk.full = True
        assert tc.on_recording_finished(finished) is None  # kept, not lost
        assert tc.on_recording_finished(finished) is None  # Asterisk's repeat: kept once
        view = tc.store_view()
        assert (view["kept"], view["dropped"]) == (1, 0) and "full" in view["error"]
        tc.tick()  # still full: still kept, nothing raised
        assert conn.execute("SELECT COUNT(*) FROM transcode_jobs").fetchone()[0] == 0
        disk.full = False
        tc.tick()
        (job,) = conn.execute("SELECT job_id, wav, state FROM transcode_jobs").fetchall()
        assert job["wav"].endswith(f"{name}.wav") and job["state"] == "pending"
        assert tc.store_view() == {"error": "", "kept": 0, "dropped": 0}

        # A worker's result that SQLite refuses is applied once there is room.
        conn.execute("UPDATE transcode_jobs SET state='sent', attempt=1 WHERE job_id=?", (job["job_id"],))
        disk.full = True
        tc.on_worker_message(protocol.transcode_message(protocol.KIND_RESULT, {
            "job_id": job["job_id"], "attempt": 1, "ok": True, "worker": "transcoder_00",
            "mp3": "/x.mp3", "duration": 1.0}))
        assert tc.store_view()["kept"] == 1
        disk.full = False
        tc.tick()
        assert conn.execute("SELECT state FROM transcode_jobs").fetchone()[0] == "done"
        assert tc.store_view()["kept"] == 0
    finally:
        tc.close()
