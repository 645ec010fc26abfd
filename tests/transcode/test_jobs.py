"""JobBook without sockets: a fake send, a fake clock, a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arimonitor import protocol
from arimonitor.commands.render import backlog_line
from arimonitor.transcode.jobs import JobBook
from arimonitor.transcode.jobtables import DONE, FAILED, PENDING, SENT, create_tables
from tests.transcode.refusing import RefusingDisk


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


class Net:
    """Collects what the book sends; can refuse (a full or absent peer)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.sent: list[dict] = []
        self.refuse = False
        self.state_at_send: list[str] = []

    def __call__(self, frames: list[bytes]) -> bool:
        if self.refuse:
            return False
        assert frames[0] == protocol.KIND_JOB
        body = json.loads(frames[1])
        row = self.conn.execute("SELECT state FROM transcode_jobs WHERE job_id=?", (body["job_id"],)).fetchone()
        self.state_at_send.append(row["state"] if row else "MISSING")
        self.sent.append(body)
        return True


def connect(path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.row_factory = sqlite3.Row
    create_tables(conn)
    return conn


@pytest.fixture
def env(tmp_path):
    conn = connect(tmp_path / "db.sqlite")
    clock = Clock()
    net = Net(conn)
    events: list[tuple[str, dict]] = []
    book = JobBook(conn, net, deadline=30, max_attempts=3, backoff=5, clock=clock, window_per_worker=2,
                   notify=lambda topic, body: events.append((topic, body)))
    return book, net, clock, events


def hello(book, name="w1", pid=100):
    book.on_message(protocol.transcode_message(protocol.KIND_HELLO, {"worker": name, "pid": pid, "interval": 2}))


def result(book, job, ok=True, worker="w1", **kw):
    body = {"job_id": job["job_id"], "attempt": job["attempt"], "worker": worker, "ok": ok,
            "wav_duration": 60.0, "mp3": "/x.mp3", **kw}
    book.on_message(protocol.transcode_message(protocol.KIND_RESULT, body))


def submit(book, n=1):
    return [book.submit(f"/rec/{i}.wav", f"/mp3/{i}.mp3", tags={"client": "101", "call_id": str(i)})
            for i in range(n)]


def test_written_before_sent_and_only_when_a_worker_lives(env):
    book, net, _clock, _ = env
    ids = submit(book, 3)
    assert net.sent == [] and {book.job(i)["state"] for i in ids} == {PENDING}
    hello(book)
    assert len(net.sent) == 2  # window: 2 per live worker
    # the row was committed first, and marked sent before it went (a full disk that refuses
    # the mark sends nothing)
    assert net.state_at_send == [SENT, SENT]
    assert [book.job(j["job_id"])["state"] for j in net.sent] == [SENT, SENT]


def test_duplicate_submit_is_ignored(env):
    book, *_ = env
    assert book.submit("/rec/a.wav", "/mp3/a.mp3") is not None
    assert book.submit("/rec/a.wav", "/mp3/a.mp3") is None
    assert book.stats()["pending"] == 1


def test_result_applied_once_and_frees_the_window(env):
    book, net, _clock, events = env
    hello(book)
    submit(book, 3)
    first = net.sent[0]
    result(book, first)
    assert book.job(first["job_id"])["state"] == DONE
    assert len(net.sent) == 3  # the freed slot went to the third job
    result(book, first)
    assert book.counters["duplicate_results"] == 1
    assert [t for t, _ in events] == ["recording.mp3"]


def test_deadline_resends_and_a_late_result_still_counts_once(env):
    book, net, clock, events = env
    hello(book)
    submit(book)
    job1 = net.sent[0]
    clock.t += 31
    hello(book)  # the worker is alive, just slow
    book.tick()
    job2 = net.sent[1]
    assert job2["job_id"] == job1["job_id"] and job2["attempt"] == 2
    result(book, job1)  # the late result of attempt 1
    result(book, job2)
    assert book.job(job1["job_id"])["state"] == DONE
    assert len(events) == 1 and book.counters["duplicate_results"] == 1


def test_errors_back_off_then_fail_with_the_reason(env):
    book, net, clock, events = env
    hello(book)
    (job_id,) = submit(book)
    result(book, net.sent[-1], ok=False, code="write_failed", reason="I/O error", retry=True)
    row = book.job(job_id)
    assert row["state"] == PENDING and row["next_try"] == clock.t + 5
    book.tick()
    assert len(net.sent) == 1  # not before the backoff
    clock.t += 5
    hello(book)
    book.tick()
    assert len(net.sent) == 2
    result(book, net.sent[-1], ok=False, code="write_failed", reason="I/O error", retry=True)
    assert book.job(job_id)["next_try"] == clock.t + 10  # doubled
    clock.t += 10
    hello(book)
    book.tick()
    result(book, net.sent[-1], ok=False, code="write_failed", reason="still an I/O error", retry=True)
    row = book.job(job_id)
    assert row["state"] == FAILED and row["reason"] == "still an I/O error" and row["failures"] == 3
    assert events[-1][0] == "recording.mp3_failed"
    # a stale error of an old attempt changes nothing
    result(book, {**net.sent[0]}, ok=False, code="x", reason="old", retry=True)
    assert book.job(job_id)["reason"] == "still an I/O error"


def test_a_full_disk_waits_without_spending_the_jobs_tries(env):
    """However long the MP3's disk stays full, the job is tried again every backoff, never
    failed for good: the disk comes back, the recording gets its MP3."""
    book, net, clock, events = env
    hello(book)
    (job_id,) = submit(book)
    for n in range(10):  # max_attempts is 3 here
        result(book, net.sent[-1], ok=False, code="disk_full", reason="no space", retry=True)
        row = book.job(job_id)
        assert (row["state"], row["failures"], row["next_try"]) == (PENDING, 0, clock.t + 5)
        clock.t += 5
        hello(book)
        book.tick()
        assert len(net.sent) == n + 2
    result(book, net.sent[-1])
    assert book.job(job_id)["state"] == DONE and book.counters["disk_full_waits"] == 10
    assert [topic for topic, _ in events] == ["recording.mp3"]


def test_a_job_sqlite_cannot_mark_sent_is_not_sent(env):
    """A full disk refuses the UPDATE that marks a job sent: it must not go out (it would go
    out again at every tick, each a conversion)."""
    book, net, _clock, _ = env
    disk = book.db = RefusingDisk(book.db)
    disk.full = True
    with pytest.raises(sqlite3.OperationalError):
        submit(book)  # the row itself is refused: no job, nothing to send
    disk.full = False
    submit(book)  # no worker yet: it waits
    disk.full = True
    with pytest.raises(sqlite3.OperationalError):
        hello(book)  # a worker: the book would send, but cannot mark the job sent
    with pytest.raises(sqlite3.OperationalError):
        book.tick()
    assert net.sent == []
    disk.full = False
    book.tick()  # room again: it goes, once
    assert len(net.sent) == 1 and book.stats()["pending"] == 0


def test_permanent_error_fails_at_once_and_retry_command_requeues(env):
    book, net, _clock, _ = env
    hello(book)
    (job_id,) = submit(book)
    result(book, net.sent[-1], ok=False, code="corrupt_wav", reason="truncated", retry=False)
    assert book.job(job_id)["state"] == FAILED
    assert book.retry("nope") == []
    assert book.retry("failed") == [job_id]
    assert book.job(job_id)["state"] == SENT and net.sent[-1]["attempt"] == 2


def test_abandoned_goes_back_without_counting(env):
    book, net, _clock, _ = env
    hello(book)
    (job_id,) = submit(book)
    result(book, net.sent[-1], ok=False, code="abandoned", reason="stopping", retry=True)
    row = book.job(job_id)
    assert row["failures"] == 0 and row["state"] == SENT and len(net.sent) == 2


def test_silent_worker_and_restarted_worker_lose_their_job_early(env):
    book, net, clock, _ = env
    hello(book, "w1", 100)
    hello(book, "w2", 200)
    submit(book, 2)
    a, b = net.sent
    book.on_message(protocol.transcode_message(protocol.KIND_STARTED, {"job_id": a["job_id"], "attempt": 1, "worker": "w1"}))
    book.on_message(protocol.transcode_message(protocol.KIND_STARTED, {"job_id": b["job_id"], "attempt": 1, "worker": "w2"}))
    hello(book, "w2", 201)  # w2 restarted: its job is lost at once
    assert [s["attempt"] for s in net.sent if s["job_id"] == b["job_id"]] == [1, 2]
    clock.t += 7  # w1 missed three hellos (deadline is 30 s)
    hello(book, "w2", 201)
    book.tick()
    assert [s["attempt"] for s in net.sent if s["job_id"] == a["job_id"]] == [1, 2]


def test_refused_send_stays_pending(env):
    book, net, _clock, _ = env
    hello(book)
    net.refuse = True
    (job_id,) = submit(book)
    assert book.job(job_id)["state"] == PENDING
    net.refuse = False
    book.tick()
    assert book.job(job_id)["state"] == SENT


def test_malformed_messages_are_counted_not_raised(env):
    book, *_ = env
    for frames in ([b"result"], [b"result", b"{not json"], [b"what", b"{}"], [b"result", b"[]"],
                   [b"result", b'{"no_id": 1}'], [b"hello", b'{"pid": 1}']):
        book.on_message(frames)
    assert book.counters["malformed"] == 6
    result(book, {"job_id": "ghost", "attempt": 1})
    assert book.counters["unknown_results"] == 1


def test_engine_restart_resends_what_was_in_flight(tmp_path):
    conn = connect(tmp_path / "db.sqlite")
    clock = Clock()
    net = Net(conn)
    book = JobBook(conn, net, deadline=30, clock=clock)
    hello(book)
    (job_id,) = submit(book)
    conn.close()  # the engine dies; the job was sent, its result never comes
    conn2 = connect(tmp_path / "db.sqlite")
    net2 = Net(conn2)
    book2 = JobBook(conn2, net2, deadline=30, clock=clock)
    hello(book2)
    book2.tick()
    assert net2.sent == []  # still within its deadline: the old worker may answer
    clock.t += 31
    hello(book2)
    book2.tick()
    assert net2.sent[0]["job_id"] == job_id and net2.sent[0]["attempt"] == 2


def test_stats_rate_and_per_worker(env):
    book, net, _clock, _ = env
    hello(book, "w1")
    hello(book, "w2", 2)
    submit(book, 4)
    for job in list(net.sent):
        result(book, job, worker="w1", seconds=0.1)
    stats = book.stats()
    assert stats["done"] == 4 and stats["workers_alive"] == 2
    assert stats["per_worker"]["w1"]["done"] == 4 and stats["per_worker"]["w1"]["audio_seconds"] == 240
    assert stats["rate"]["audio_seconds_per_second"] == 4.0  # 240 s of audio in the last 60 s


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["deliver", "dup", "drop", "late", "tick"]),
                          st.integers(0, 50)), max_size=80))
def test_every_job_completes_exactly_once_whatever_the_network_does(tmp_path_factory, script):
    conn = connect(tmp_path_factory.mktemp("p") / "db.sqlite")
    clock = Clock()
    net = Net(conn)
    done: Counter = Counter()
    book = JobBook(conn, net, deadline=10, max_attempts=50, clock=clock,
                   notify=lambda topic, body: done.update([body["job_id"]]) if topic == "recording.mp3" else None)
    hello(book)
    ids = submit(book, 5)
    cursor = 0
    for action, n in script:
        if action == "tick":
            clock.t += n / 5
            hello(book)
            book.tick()
        elif cursor < len(net.sent):
            job = net.sent[cursor] if action != "late" else net.sent[n % len(net.sent)]
            cursor += action != "late"
            if action in ("deliver", "dup", "late"):
                result(book, job)
            if action == "dup":
                result(book, job)
    for _ in range(200):  # then the network behaves until everything is through
        clock.t += 11
        hello(book)
        book.tick()
        while cursor < len(net.sent):
            result(book, net.sent[cursor])
            cursor += 1
        if all(book.job(i)["state"] == DONE for i in ids):
            break
    assert {i: done[i] for i in ids} == dict.fromkeys(ids, 1)


def test_gone_worker_its_queued_jobs_go_out_at_once_and_a_slow_workers_late_result_counts_once(env):
    book, net, clock, events = env
    hello(book, "w1", 100)
    hello(book, "w2", 200)
    submit(book, 4)  # window 2 x 2: all four sent; which pipe each went into is unknown
    a = net.sent[0]
    book.on_message(protocol.transcode_message(protocol.KIND_STARTED, {"job_id": a["job_id"], "attempt": 1, "worker": "w1"}))
    clock.t += 5
    hello(book, "w2", 200)
    book.tick()  # w1 is 5 s silent (interval 2): still alive
    assert book.counters["workers_gone"] == 0 and len(net.sent) == 4
    clock.t += 1.5
    hello(book, "w2", 200)
    book.tick()  # 6.5 s: three heartbeats missed, w1 is gone
    assert book.counters["workers_gone"] == 1 and book.counters["resent_worker_gone"] == 4
    assert sorted(s["attempt"] for s in net.sent[4:]) == [2, 2]  # window of w2 alone: 2
    assert book.job(a["job_id"])["failures"] == 1  # its started job counts (it may be the killer)
    queued = [book.job(s["job_id"]) for s in net.sent[1:4]]
    assert {q["failures"] for q in queued} == {0}  # maybe never in w1's pipe: not their fault
    assert book.stats()["per_worker"]["w1"]["state"] == "gone"
    book.tick()
    assert book.counters["workers_gone"] == 1  # declared once
    # w1 was merely slow: its late result is applied; the resend's result is a duplicate
    result(book, a, worker="w1")
    assert book.job(a["job_id"])["state"] == DONE and book.stats()["per_worker"]["w1"]["state"] == "alive"
    for sent in [s for s in net.sent if s["job_id"] == a["job_id"]][1:]:
        result(book, sent, worker="w2")
    assert book.counters["duplicate_results"] == 1
    assert [b["job_id"] for t, b in events if t == "recording.mp3"] == [a["job_id"]]


def test_backlog_rate_and_estimate(env):
    book, net, clock, _ = env
    hello(book, "w1")
    submit(book, 10)
    for i in range(4):
        clock.t += 1
        result(book, net.sent[i], worker="w1")
    clock.t += 1  # 4 done in the last 5 s
    stats = book.stats()
    assert stats["done"] == 4 and stats["backlog"]["jobs"] == 6
    assert stats["backlog"]["jobs_per_second"] == 1.0 and stats["backlog"]["seconds_left"] == 6.0
    assert backlog_line("backlog", 1234, 37.2) == "backlog 1,234 jobs, 37/s, ~33s left"
    assert backlog_line("backlog", 5, 0) == "backlog 5 jobs, no rate yet"


def test_finished_jobs_kept_for_the_rate_stay_bounded_without_stats(env):
    book, net, clock, _events = env
    hello(book)
    for i in range(200):
        book.submit(f"/w/{i}.wav", f"/m/{i}.mp3")
    for _ in range(100):  # every 10 s the jobs in flight (2: one worker's window) finish
        for sent in [s for s in net.sent if book.job(s["job_id"])["state"] == SENT]:
            result(book, sent)
        clock.t += 10
        hello(book)  # nobody calls stats() or jobs_per_second() meanwhile
    assert book.counters["done"] == 200
    # what the 60 s rate looks at, and no more: 7 rounds of 2 jobs at most, not 200
    assert len(book._recent) <= 7 * 2


def test_a_recording_open_at_engine_stop_is_interrupted_at_the_next_start(env):
    book, _net, clock, _ = env
    book.note_recording("r1", "recording", client="101", call_id="c1")
    book.note_recording("r2", "done", client="101", call_id="c2")
    clock.t += 60
    assert book.interrupt_recordings("arimonitor was down") == 1
    states = {r["name"]: (r["state"], r["reason"]) for r in book.recordings()}
    assert states == {"r1": ("interrupted", "arimonitor was down"), "r2": ("done", "")}
    book.note_recording("r1", "done")   # only the engine restarted: Asterisk finished it after all
    assert {r["name"]: r["state"] for r in book.recordings()}["r1"] == "done"


def test_a_retry_of_failed_jobs_uses_the_current_settings(env):
    book, net, _clock, _ = env
    hello(book)
    job_id = book.submit("/rec/a.wav", "/mp3/a.mp3", bitrate=320, delete_wav=False)
    result(book, net.sent[-1], ok=False, code="encoder_failed", reason="bad bitrate", retry=False)
    assert book.retry("failed", bitrate=48, delete_wav=True) == [job_id]
    assert (net.sent[-1]["bitrate"], net.sent[-1]["delete_wav"]) == (48, True)
