"""A server on another host: its WAV fetched over ARI by the worker, deleted there only once
the MP3 is verified ([ari:NAME] recordings). The simulator serves the stored recordings over
real HTTP, as Asterisk does (GET /recordings/stored/{name}/file, DELETE /recordings/stored/{name})."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import requests

from arimonitor import protocol
from arimonitor.config import load_config
from arimonitor.engine.store import Store
from arimonitor.sim.testing import SimServer
from arimonitor.transcode.component import TranscodeComponent
from arimonitor.transcode.fetch import Fetcher
from arimonitor.transcode.jobtables import MIGRATION, SCHEMA
from tests.support import free_port, write_config
from tests.transcode.audio import make_wav
from tests.transcode.test_worker_unit import job, run, worker

NAME = "101/2026-12-01/1700000000.42"


def fetch_config(tmp: Path, pbx2_url: str, password: str, **pbx2):
    return load_config(write_config(tmp, {
        "ari": {"server_id": "pbx1"},
        "ari:pbx2": {"url": pbx2_url, "password": password, **pbx2}}), environ={})


def test_each_server_has_its_folder_or_is_fetched(tmp_path):
    cfg = load_config(write_config(tmp_path, {
        "ari": {"server_id": "pbx1"}, "ari:pbx2": {"url": "http://127.0.0.1:9/ari"},
        "ari:pbx3": {"url": "http://127.0.0.1:10/ari", "recordings": "spool3"}}), environ={})
    assert cfg.recordings_folder("pbx1") == cfg["paths.recordings"] == cfg.recordings_folder()
    assert cfg.recordings_folder("pbx2") is None                   # another host: fetched
    assert cfg.recordings_folder("pbx3") == str(cfg.home / "spool3")
    fetched = cfg.with_overrides({"ari.recordings": "fetch"})
    assert fetched.recordings_folder("pbx1") is None
    # the [ari] folder is never inherited: two servers never share a spool
    moved = cfg.with_overrides({"ari.recordings": str(tmp_path / "one")})
    assert moved.recordings_folder("pbx1") == str(tmp_path / "one") and moved.recordings_folder("pbx2") is None


def test_the_simulator_serves_a_stored_file_like_asterisk(tmp_path):
    with SimServer(recordings=tmp_path / "spool") as sim:
        make_wav(tmp_path / "spool" / f"{NAME}.wav", 1)
        auth = (sim.user, sim.password)
        quoted = NAME.replace("/", "%2F")
        got = requests.get(f"{sim.url}/recordings/stored/{quoted}/file", auth=auth, timeout=5)
        assert got.status_code == 200 and got.headers["Content-Type"] == "audio/wav"
        assert got.content == (tmp_path / "spool" / f"{NAME}.wav").read_bytes()
        missing = requests.get(f"{sim.url}/recordings/stored/nope/file", auth=auth, timeout=5)
        assert (missing.status_code, missing.json()) == (404, {"message": "Recording not found"})


def test_worker_fetches_converts_then_deletes_on_the_server(tmp_path):
    with SimServer(recordings=tmp_path / "spool") as sim:
        make_wav(tmp_path / "spool" / f"{NAME}.wav", 2)
        cfg = fetch_config(tmp_path, sim.url, sim.password)
        (tmp_path / "mp3").mkdir()
        body = job(tmp_path, wav=str(tmp_path / "fetched" / f"{NAME}.wav"), delete_wav=True,
                   fetch={"server": "pbx2", "name": NAME})
        w = worker()
        w.fetcher = Fetcher(cfg)
        result = run(w, protocol.transcode_message(protocol.KIND_JOB, body))[-1][1]
        assert result["ok"] and result["wav_deleted"] and result["notes"] == [], result
        assert Path(result["mp3"]).stat().st_size > 0
        assert not (tmp_path / "spool" / f"{NAME}.wav").exists()          # deleted on pbx2
        assert not (tmp_path / "fetched" / f"{NAME}.wav").exists()        # our copy too
        methods = [r["method"] for r in sim.control.requests() if r["path"].startswith("/recordings/stored/")]
        assert methods == ["GET", "DELETE"]


def test_without_delete_wav_the_server_keeps_its_wav(tmp_path):
    with SimServer(recordings=tmp_path / "spool") as sim:
        make_wav(tmp_path / "spool" / f"{NAME}.wav", 1)
        (tmp_path / "mp3").mkdir()
        w = worker()
        w.fetcher = Fetcher(fetch_config(tmp_path, sim.url, sim.password))
        body = job(tmp_path, wav=str(tmp_path / "fetched" / "a.wav"), fetch={"server": "pbx2", "name": NAME})
        result = run(w, protocol.transcode_message(protocol.KIND_JOB, body))[-1][1]
        assert result["ok"] and not result["wav_deleted"], result
        assert (tmp_path / "spool" / f"{NAME}.wav").exists()
        assert not (tmp_path / "fetched" / "a.wav").exists()  # our copy is only a cache


def test_a_server_that_does_not_answer_is_a_retryable_failure_and_nothing_is_deleted(tmp_path):
    cfg = fetch_config(tmp_path, f"http://127.0.0.1:{free_port()}/ari", "pw")
    (tmp_path / "mp3").mkdir()
    w = worker()
    w.fetcher = Fetcher(cfg)
    body = job(tmp_path, wav=str(tmp_path / "fetched" / "a.wav"), delete_wav=True,
               fetch={"server": "pbx2", "name": NAME})
    result = run(w, protocol.transcode_message(protocol.KIND_JOB, body))[-1][1]
    assert (result["ok"], result["code"], result["retry"]) == (False, "fetch_failed", True), result
    assert "connection refused" in result["reason"]
    assert not list((tmp_path / "fetched").glob("*"))  # no partial file left behind


def test_a_recording_gone_from_the_server_is_a_missing_wav(tmp_path):
    with SimServer(recordings=tmp_path / "spool") as sim:
        (tmp_path / "mp3").mkdir()
        w = worker()
        w.fetcher = Fetcher(fetch_config(tmp_path, sim.url, sim.password))
        body = job(tmp_path, wav=str(tmp_path / "fetched" / "a.wav"), fetch={"server": "pbx2", "name": NAME})
        result = run(w, protocol.transcode_message(protocol.KIND_JOB, body))[-1][1]
        assert (result["ok"], result["code"]) == (False, "missing_wav"), result


@pytest.mark.parametrize("fetch", [{"server": "pbx 2", "name": NAME}, {"server": "pbx2"}, "pbx2"])
def test_a_bad_fetch_is_a_bad_job(tmp_path, fetch):
    body = job(tmp_path, fetch=fetch)
    result = run(worker(), protocol.transcode_message(protocol.KIND_JOB, body))[-1][1]
    assert (result["ok"], result["code"], result["retry"]) == (False, "bad_job", False), result


def test_the_server_migration_keeps_old_rows(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    store.migrate(MIGRATION, SCHEMA)
    store.connection.execute("INSERT INTO transcode_jobs (job_id, wav, mp3, state) VALUES ('old', '/w.wav', "
                             "'/m.mp3', 'done')")
    store.connection.execute("INSERT INTO recording_log (name, state) VALUES ('old', 'done')")
    for migration in TranscodeComponent.migrations():
        store.migrate(*migration)
    row = store.connection.execute("SELECT job_id, server, fetch FROM transcode_jobs").fetchone()
    assert tuple(row) == ("old", None, "")
    assert tuple(store.connection.execute("SELECT name, server FROM recording_log").fetchone()) == ("old", None)


def test_recording_finished_on_a_fetched_server_queues_a_fetch_job(tmp_path):
    cfg = fetch_config(tmp_path, "http://127.0.0.1:9/ari", "pw")
    conn = sqlite3.connect(":memory:")
    from arimonitor.transcode.jobtables import create_tables
    create_tables(conn)
    tc = TranscodeComponent(cfg, conn, settle=0.0)
    rec = {"name": NAME, "format": "wav", "target_uri": "channel:x"}
    tc.on_recording_finished({"type": "RecordingFinished", "recording": rec, "server": "pbx2"})
    tc.on_recording_finished({"type": "RecordingFinished", "recording": {**rec, "name": "101/x/local"}})
    rows = {r["fetch"] or r["wav"]: (r["server"], r["wav"]) for r in conn.execute("SELECT * FROM transcode_jobs")}
    assert rows[NAME] == ("pbx2", str(Path(cfg.fetched_folder("pbx2")) / f"{NAME}.wav"))
    # no server on the event (before the engine sets it): the first server, its own folder
    local = str(Path(cfg["paths.recordings"]) / "101/x/local.wav")
    assert rows[local] == ("pbx1", local)
    logged = dict(conn.execute("SELECT name, server FROM recording_log").fetchall())
    assert logged == {NAME: "pbx2", "101/x/local": "pbx1"}


def test_rescan_reads_every_local_server_folder_and_names_its_server(tmp_path):
    cfg = load_config(write_config(tmp_path, {
        "ari": {"server_id": "pbx1"}, "ari:pbx2": {"url": "http://127.0.0.1:9/ari"},
        "ari:pbx3": {"url": "http://127.0.0.1:10/ari", "recordings": str(tmp_path / "spool3")}}), environ={})
    make_wav(Path(cfg["paths.recordings"]) / "101/2026-12-01/one.wav", 1)
    make_wav(tmp_path / "spool3" / "101/2026-12-01/three.wav", 1)
    conn = sqlite3.connect(":memory:")
    from arimonitor.transcode.jobtables import create_tables
    create_tables(conn)
    tc = TranscodeComponent(cfg, conn, settle=0.0)
    tc.rescan()
    rows = {Path(wav).name: server for wav, server in conn.execute("SELECT wav, server FROM transcode_jobs")}
    assert rows == {"one.wav": "pbx1", "three.wav": "pbx3"}
