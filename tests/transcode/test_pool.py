"""The real pool: transcoder processes over ZeroMQ, the engine side with real sockets.

kill -9 of a worker mid-job and of the engine with jobs pending: every job completes once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from arimonitor.config import load_config
from arimonitor.transcode.component import TranscodeComponent
from arimonitor.transcode.jobtables import create_tables
from arimonitor.transcode.mp3info import read_mp3_info
from tests.support import eventually
from tests.transcode.audio import decoded_seconds, make_wav
from tests.transcode.loop import SimpleLoop

HERE = Path(__file__).resolve().parent


def write_config(tmp: Path, deadline: str = "120s", heartbeat: str = "2s") -> Path:
    ini = tmp / "arimonitor.ini"
    ini.write_text(f"[paths]\nvar = {tmp / 'var'}\n\n[transcoder]\njob_deadline = {deadline}\n"
                   f"max_attempts = 4\nheartbeat = {heartbeat}\n")
    return ini


def start_workers(processes, ini: Path, n: int) -> list:
    logs = ini.parent / "var" / "log"
    logs.mkdir(parents=True, exist_ok=True)
    return [processes.python("procs/transcoder.py", "--name", f"transcoder_{i:02d}",
                             env={"ARIMONITOR_CONFIG": str(ini)}, log=logs / f"out_{i}.txt")
            for i in range(n)]


@pytest.fixture
def engine_side(tmp_path, request):
    ini = write_config(tmp_path, heartbeat=getattr(request, "param", "2s"))
    cfg = load_config(ini)
    conn = sqlite3.connect(str(tmp_path / "db.sqlite"), isolation_level=None)
    conn.row_factory = sqlite3.Row
    create_tables(conn)
    published: list[tuple[str, dict]] = []
    component = TranscodeComponent(cfg, conn, notify=lambda t, b: published.append((t, b)), settle=0.0)
    loop = SimpleLoop()
    component.bind()
    yield ini, cfg, component, loop, published
    component.close()
    conn.close()


def test_pool_converts_recordings_and_the_finished_event_dedupes(processes, engine_side):
    ini, cfg, component, loop, published = engine_side
    rec = Path(cfg["paths.recordings"])
    for i in range(4):
        make_wav(rec / "101" / "2026-11-24" / f"17324800{i:02d}.1.wav", 5 + i)
    start_workers(processes, ini, 2)
    component.start(loop)  # the rescan at start queues the four
    event = {"type": "RecordingFinished", "recording": {"name": "101/2026-11-24/1732480000.1",
                                                         "format": "wav", "target_uri": "bridge:b1"}}
    assert component.on_recording_finished(event) is None  # already queued by the rescan: no twin
    loop.run_until(lambda: component.book.stats()["done"] == 4, 30, "4 jobs done")
    assert len(published) == 4
    for topic, body in published:
        assert topic == "recording.mp3"
        seconds = decoded_seconds(Path(body["mp3"]))
        assert 5 <= seconds <= 9.3
    loop.run_until(lambda: len(component.book.live_workers()) == 2, 20, "both workers' hello")
    workers = component.book.stats()["per_worker"]
    assert set(workers) == {"transcoder_00", "transcoder_01"}
    assert all(w["alive"] for w in workers.values())
    # both workers measured the encoders and put lameenc first
    assert all(w["encoders"][0] == "lameenc" for w in workers.values())


def test_worker_killed_mid_job_the_job_completes_once_elsewhere(processes, engine_side):
    ini, cfg, component, loop, published = engine_side
    rec = Path(cfg["paths.recordings"])
    big = make_wav(rec / "big.wav", 3600)  # an hour: a few seconds of encoding
    start_workers(processes, ini, 2)
    component.start(loop)
    book = component.book
    (job,) = book.jobs()
    holder = loop.run_until(lambda: book.job(job["job_id"])["worker"], 20, "the big job taken")
    loop.run_until(lambda: holder in book.workers, 5)
    os.kill(book.workers[holder].pid, signal.SIGKILL)
    # deadline is 120 s: the resend comes from the holder going silent (3 missed hellos)
    loop.run_until(lambda: book.job(job["job_id"])["state"] == "done", 40, "the big job done")
    row = book.job(job["job_id"])
    assert row["attempt"] == 2 and row["worker"] != holder
    assert [b["job_id"] for t, b in published] == [job["job_id"]]
    assert read_mp3_info(row["mp3"]).duration == pytest.approx(3600, abs=0.5)
    assert big.exists()  # delete_wav is off by default
    assert list(Path(row["mp3"]).parent.glob(".*.part")) == []


def test_engine_killed_with_jobs_pending_every_job_completes_once(processes, tmp_path):
    ini = write_config(tmp_path, deadline="4s")
    cfg = load_config(ini)
    rec = Path(cfg["paths.recordings"])
    for i in range(10):
        make_wav(rec / f"r{i}.wav", 900)  # 15 minutes each
    applied = tmp_path / "applied.log"
    env = {"ARIMONITOR_CONFIG": str(ini)}
    engine = processes.python(str(HERE / "engine_stub.py"), str(applied), env=env,
                              log=tmp_path / "engine1.txt")
    start_workers(processes, ini, 2)
    eventually(lambda: applied.exists() and applied.read_text().count("\n") >= 1, 30)
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait()
    done_at_kill = applied.read_text().count("\n")
    assert done_at_kill < 10, "the engine must die with jobs pending"
    processes.python(str(HERE / "engine_stub.py"), str(applied), env=env, log=tmp_path / "engine2.txt")

    def all_done():
        conn = sqlite3.connect(cfg["paths.database"])
        try:
            states = [r[0] for r in conn.execute("SELECT state FROM transcode_jobs")]
        finally:
            conn.close()
        assert len(states) == 10 and set(states) == {"done"}, states
        return True

    eventually(all_done, 60)
    lines = Counter(applied.read_text().split())
    assert max(lines.values()) == 1, f"a job was applied twice: {lines}"
    mp3s = sorted(Path(cfg["paths.mp3"]).glob("*.mp3"))
    assert len(mp3s) == 10
    for mp3 in mp3s:
        assert read_mp3_info(str(mp3)).duration == pytest.approx(900, abs=0.5)


# 0.5 s heartbeats: the victim is gone after 1.5 s of silence, still far inside the 120 s job
# deadline, while a survivor busy encoding on a loaded machine is not mistaken for dead.
@pytest.mark.parametrize("engine_side", ["0.5s"], indirect=True)
def test_worker_killed_with_queued_jobs_they_complete_elsewhere_long_before_the_deadline(
        processes, engine_side):
    """PUSH already put jobs into the victim's pipe; they die with it and must go out again as
    soon as it misses three heartbeats (0.9 s here), not after the 120 s job deadline."""
    ini, cfg, component, loop, published = engine_side
    book = component.book
    start_workers(processes, ini, 2)
    component.start(loop)
    loop.run_until(lambda: len(book.live_workers()) == 2, 20, "both workers' hello")
    rec = Path(cfg["paths.recordings"])
    for i in range(8):
        make_wav(rec / "101" / "2026-11-24" / f"q{i}.wav", 600)
    component.rescan()  # 8 jobs; the window sends 6: one running + two queued in each worker
    assert book.stats()["running"] == 6

    def victim_started():
        started = [j for j in book.jobs(state="sent") if j["worker"]]
        return started[0]["worker"] if started else None

    victim = loop.run_until(victim_started, 20, "a job started")
    os.kill(book.workers[victim].pid, signal.SIGKILL)
    killed_at = time.monotonic()
    loop.run_until(lambda: book.stats()["done"] == 8, 25, "all 8 jobs done")
    assert time.monotonic() - killed_at < 25  # the job deadline is 120 s
    stats = book.stats()
    assert stats["counters"]["workers_gone"] == 1
    assert stats["counters"]["resent_worker_gone"] >= 3  # its started job + its queued ones
    assert stats["per_worker"][victim]["state"] == "gone"
    survivor = next(n for n in stats["per_worker"] if n != victim)
    assert stats["per_worker"][survivor]["state"] == "alive"
    ids = [b["job_id"] for t, b in published if t == "recording.mp3"]
    assert len(ids) == 8 and len(set(ids)) == 8  # each applied exactly once
    done = book.jobs(state="done")
    assert sum(j["worker"] == victim for j in done) <= 1  # at most one it finished before the kill
    for job in done:
        assert read_mp3_info(job["mp3"]).duration == pytest.approx(600, abs=0.5)
    assert stats["failed"] == 0
