"""A fetch-server's recordings that finished while the engine was down (no RecordingFinished):
listed over its ARI after its resync and fetched like any other; anybody else's left alone.
A fake ARI here; the real processes with the simulator over HTTP are in
tests/integration/test_fetch_recordings.py."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from arimonitor.ari.rest import AriHttpError, AriUnavailable
from arimonitor.config import load_config
from arimonitor.transcode.component import TranscodeComponent
from arimonitor.transcode.jobtables import create_tables
from arimonitor.transcode.policy import is_ours, recording_name
from arimonitor.transcode.stored import StoredLister
from tests.support import write_config

OURS = "101/2026-12-01/pbx2-1700000000.42"


class FakeAri:
    """GET /recordings/stored and /recordings/live/{name} as Asterisk answers them."""

    def __init__(self, stored: list[dict[str, str]], live: set[str] = frozenset()) -> None:
        self.stored = stored
        self.live = set(live)
        self.down = False
        self.asked: list[str] = []

    def get(self, path: str, params: Any = None, timeout: Any = None) -> Any:
        self.asked.append(path)
        if self.down:
            raise AriUnavailable("GET", path, "connection refused")
        if path == "/recordings/stored":
            return list(self.stored)
        name = path.removeprefix("/recordings/live/").replace("%2F", "/")
        if name in self.live:
            return {"name": name, "state": "recording"}
        raise AriHttpError("GET", path, 404, {"message": "Recording not found"})


def at_once(work, done) -> None:
    """The engine's REST worker, run in place: work(), then done(result, error)."""
    try:
        result = work()
    except Exception as exc:  # noqa: BLE001 - the worker hands any failure to done
        done(None, exc)
    else:
        done(result, None)


def lister(tmp_path: Path, ari: FakeAri, engine_live: set[str] = frozenset()):
    cfg = load_config(write_config(tmp_path, {
        "ari": {"server_id": "pbx1"}, "ari:pbx2": {"url": "http://127.0.0.1:9/ari"}}), environ={})
    conn = sqlite3.connect(":memory:")
    create_tables(conn)
    tc = TranscodeComponent(cfg, conn, settle=0.0)
    stored = StoredLister(lambda server: ari, at_once, ours=lambda s, name: is_ours(name, s),
                          known=tc.has_mp3_or_job, live=lambda name: name in engine_live,
                          queue=lambda server, name, fmt: tc.finished(name, fmt, server))
    return cfg, conn, tc, stored


def jobs(conn) -> dict[str, tuple[str, str]]:
    return {r[0]: (r[1], r[2]) for r in conn.execute("SELECT fetch, server, wav FROM transcode_jobs")}


def test_only_names_the_engine_gives_are_ours():
    assert is_ours(recording_name("101", "1700000000.42", 1764547200.0, "pbx2"), "pbx2")
    assert is_ours("101/2026-12-01/c2c-abc", "pbx2")          # the click-to-call flow's
    assert is_ours("101/2026-12-01/1700000000.42")             # the first server's
    assert not is_ours("101/2026-12-01/1700000000.42", "pbx2")  # the first server's layout, not pbx2's
    for other in ("greeting", "voicemail/x", "101/2026-12-01", "101/2026-12-01/a/b", "101/today/x",
                  "../2026-12-01/x", "101/2026-12-01/a b"):
        assert not is_ours(other) and not is_ours(other, "pbx2"), other


def test_a_stored_recording_without_a_job_gets_its_fetch_job_and_no_other_is_touched(tmp_path):
    done = "101/2026-12-01/pbx2-1700000000.1"  # converted earlier, its WAV kept (delete_wav off)
    ari = FakeAri([{"name": OURS, "format": "wav"}, {"name": done, "format": "wav"},
                   {"name": "greeting", "format": "wav"},
                   {"name": "101/2026-12-01/1700000000.9", "format": "wav"}])
    cfg, conn, _tc, stored = lister(tmp_path, ari)
    mp3 = Path(cfg["paths.mp3"]) / f"{done}.mp3"
    mp3.parent.mkdir(parents=True)
    mp3.write_bytes(b"ID3")
    stored.look("pbx2")
    assert jobs(conn) == {OURS: ("pbx2", str(Path(cfg.fetched_folder("pbx2")) / f"{OURS}.wav"))}
    assert stored.counters["queued"] == 1 and stored.counters["not_ours"] == 2
    assert not stored.pending
    # the recording log has it too, with its job: `recordings` shows it like any other
    assert tuple(conn.execute("SELECT server, job_id IS NOT NULL FROM recording_log WHERE name=?",
                        (OURS,)).fetchone()) == ("pbx2", 1)
    stored.look("pbx2")  # the next resync: it has its job now
    assert len(jobs(conn)) == 1 and stored.counters["queued"] == 1


def test_a_recording_still_written_is_left_until_a_later_look_finds_it_finished(tmp_path):
    ari = FakeAri([{"name": OURS, "format": "wav"}], live={OURS})
    _cfg, conn, _tc, stored = lister(tmp_path, ari)
    stored.look("pbx2")
    assert jobs(conn) == {} and stored.pending == {"pbx2"}
    assert ari.asked[-1] == "/recordings/live/101%2F2026-12-01%2Fpbx2-1700000000.42"
    ari.live.clear()  # Asterisk closed it; its RecordingFinished went to nobody
    stored.look("pbx2")
    assert list(jobs(conn)) == [OURS] and not stored.pending


def test_a_recording_the_engine_knows_as_live_is_not_even_asked_about(tmp_path):
    ari = FakeAri([{"name": OURS, "format": "wav"}])
    _cfg, conn, _tc, stored = lister(tmp_path, ari, engine_live={OURS})
    stored.look("pbx2")
    assert jobs(conn) == {} and stored.pending == {"pbx2"}
    assert ari.asked == ["/recordings/stored"]


def test_a_failing_listing_is_logged_once_counted_and_retried(tmp_path, caplog):
    ari = FakeAri([{"name": OURS, "format": "wav"}])
    ari.down = True
    _cfg, conn, _tc, stored = lister(tmp_path, ari)
    with caplog.at_level(logging.INFO, logger="arimonitor.transcode.stored"):
        for _ in range(3):
            stored.look("pbx2")
            assert stored.pending == {"pbx2"}
        assert stored.counters["list_failed"] == 3 and jobs(conn) == {}
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "pbx2" in warnings[0].getMessage(), caplog.text
        ari.down = False
        stored.look("pbx2")
    assert list(jobs(conn)) == [OURS] and not stored.pending
    assert "listed again" in caplog.text


def test_a_listing_that_is_not_a_list_is_a_failure_not_a_crash(tmp_path):
    ari = FakeAri([])
    _cfg, _conn, _tc, stored = lister(tmp_path, ari)
    ari.get = lambda path, **kw: {"message": "odd"}  # type: ignore[method-assign]
    stored.look("pbx2")
    assert stored.counters["list_failed"] == 1 and stored.pending == {"pbx2"}


def test_no_two_looks_at_one_server_at_once(tmp_path):
    ari = FakeAri([{"name": OURS, "format": "wav"}])
    waiting: list[Any] = []
    _cfg, conn, tc, _ = lister(tmp_path, ari)
    stored = StoredLister(lambda server: ari, lambda work, done: waiting.append((work, done)),
                          ours=lambda s, name: is_ours(name, s), known=tc.has_mp3_or_job,
                          live=lambda name: False, queue=lambda s, n, f: tc.finished(n, f, s))
    stored.look("pbx2")
    stored.look("pbx2")  # a resync while the first listing is still on its way
    assert len(waiting) == 1 and stored.pending == {"pbx2"}
    while waiting:
        work, done = waiting.pop(0)
        at_once(work, done)
    assert list(jobs(conn)) == [OURS]
