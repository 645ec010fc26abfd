"""The bus process's position file (`var/bus.position`, bus/process.py Position): the engine
stamp of the last confirmed event, read back at start; a bad file or a failing disk is said
once and never stops the bus."""

from __future__ import annotations

import logging

from arimonitor.bus.process import Position

log = logging.getLogger("test")


def test_the_position_survives_a_restart_and_is_written_only_when_it_moved(tmp_path):
    path = tmp_path / "bus.position"
    first = Position(path, log)
    assert first.load() is None
    first.save("1796092898009.42")
    stamp = path.stat().st_mtime_ns
    first.save("1796092898009.42")
    assert path.stat().st_mtime_ns == stamp
    assert Position(path, log).load() == ("1796092898009", 42)
    assert not path.with_name("bus.position.part").exists()


def test_a_bad_file_is_no_position_and_a_failing_write_is_logged_once(tmp_path, caplog):
    path = tmp_path / "bus.position"
    path.write_text("garbage\n")
    with caplog.at_level(logging.WARNING):
        assert Position(path, log).load() is None
        gone = Position(tmp_path / "missing-dir" / "bus.position", log)
        gone.save("1.1")
        gone.save("1.2")
    assert sum("holds no position" in r.getMessage() for r in caplog.records) == 1
    assert sum("cannot keep the position" in r.getMessage() for r in caplog.records) == 1
