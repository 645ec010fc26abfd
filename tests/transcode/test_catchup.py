"""Catch-up through the real engine process: WAVs with no MP3 and no job become jobs at engine
start and on `recordings rescan` (paths.recordings and paths.mixmonitor); a file still being
written is left alone until it is closed (old enough and unchanged since the last look)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from arimonitor.sim.testing import SimServer
from arimonitor.transcode.mp3info import read_mp3_info
from tests.engine.stack import control_address, ctl, outputs, start_stack, write_config
from tests.support import eventually
from tests.transcode.audio import make_wav

pytestmark = pytest.mark.timeout(60)
DAY = "2026-11-24"


def aged(path: Path, seconds: float = 60) -> Path:
    t = time.time() - seconds  # closed a minute ago: past the engine's 10 s settle time
    os.utime(path, (t, t))
    return path


def test_engine_start_and_rescan_queue_leftovers_and_leave_a_growing_file_alone(processes, tmp_path):
    rec, mixmon = tmp_path / "rec", tmp_path / "mixmon"
    mp3 = tmp_path / "var" / "mp3"
    aged(make_wav(rec / "101" / DAY / "left1.wav", 20))
    aged(make_wav(mixmon / "q-700-1.wav", 15))
    aged(make_wav(rec / "101" / DAY / "converted.wav", 5))
    (mp3 / "101" / DAY).mkdir(parents=True)
    (mp3 / "101" / DAY / "converted.mp3").write_bytes(b"already there")
    growing = make_wav(rec / "110" / DAY / "growing.wav", 4)  # mtime now: still being written
    with SimServer(endpoints=["1013010"]) as sim:
        ini = write_config(tmp_path, sim, paths={"recordings": str(rec), "mixmonitor": str(mixmon)})
        start_stack(processes, ini, tmp_path, reader=False,
                    extra=(("transcoder.py", "--name", "transcoder_00"),))
        address = control_address(tmp_path)

        def jobs() -> dict:
            try:
                return ctl(address, "jobs", timeout=1)["data"]
            except TimeoutError:
                return {}

        def started_two() -> bool:
            return jobs().get("done") == 2
        try:
            eventually(started_two, timeout=30, interval=0.2)
        except AssertionError:
            raise AssertionError(f"catch-up at start: {jobs()}\n{outputs(tmp_path)}") from None
        assert read_mp3_info(str(mp3 / "101" / DAY / "left1.mp3")).duration == pytest.approx(20, abs=0.2)
        assert read_mp3_info(str(mp3 / "mixmonitor" / "q-700-1.mp3")).duration == pytest.approx(15, abs=0.2)
        assert (mp3 / "101" / DAY / "converted.mp3").read_bytes() == b"already there"
        listed = ctl(address, "jobs", state="done")["data"]["jobs"]
        assert sorted(j["source"] for j in listed) == ["mixmonitor", "recordings"]
        assert listed and all(j["wav"] != str(growing) for j in listed)

        # a leftover found later, while `growing` is still being written to
        aged(make_wav(rec / "101" / DAY / "left2.wav", 8))
        with growing.open("ab") as fh:
            fh.write(b"\0" * 16000)
        data = ctl(address, "recordings", "rescan")["data"]
        assert data["queued"] == [str(rec / "101" / DAY / "left2.wav")]
        assert data["settling"] == 1 and data["has_mp3"] >= 1
        # closed now and old enough, but changed since the last look: one more look first
        aged(growing)
        data = ctl(address, "recordings", "rescan")["data"]
        assert data["queued"] == [] and data["settling"] == 1
        data = ctl(address, "recordings", "rescan")["data"]
        assert data["queued"] == [str(growing)]
        eventually(lambda: jobs().get("done") == 4, timeout=20, interval=0.2)
        assert (mp3 / "101" / DAY / "left2.mp3").exists()
        assert (mp3 / "110" / DAY / "growing.mp3").exists()
        assert ctl(address, "recordings", "rescan")["data"]["queued"] == []  # nothing twice
