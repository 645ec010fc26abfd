"""`control.level` on the engine's PUB changes a running process's log level."""

from __future__ import annotations

import zmq

from arimonitor import protocol
from tests.support import eventually, write_config


def test_a_running_process_follows_level_changes(tmp_path, processes):
    ini = write_config(tmp_path)
    run_dir = tmp_path / "var" / "run"
    run_dir.mkdir(parents=True)
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(f"ipc://{run_dir}/publish.sock")
    try:
        # the transcoder placeholder logs "alive" at DEBUG every few seconds; any process works
        processes.python("procs/transcoder.py", "--name", "transcoder_07",
                         env={"ARIMONITOR_CONFIG": str(ini)})
        log = tmp_path / "var" / "log" / "transcoder_07.log"
        eventually(lambda: log.exists() and "starting" in log.read_text(), timeout=15)

        def switched(level: str, target: str):
            def check():
                pub.send_multipart(protocol.level_change(target, level))
                return f"log level now {level}" in log.read_text()
            return check

        # "transcoder" addresses every transcoder_NN; another name does not
        pub.send_multipart(protocol.level_change("engine", "DEBUG"))
        eventually(switched("DEBUG", "transcoder"), timeout=10, interval=0.2)
        eventually(switched("INFO", "all"), timeout=10, interval=0.2)
        assert "log level now DEBUG" in log.read_text()
    finally:
        pub.close()


def test_level_targets():
    import threading

    from arimonitor.levels import LevelListener

    worker = LevelListener("ipc:///nonexistent", "transcoder_03", threading.Event())
    assert worker.matches("transcoder") and worker.matches("all") and worker.matches("transcoder_03")
    assert not worker.matches("engine") and not worker.matches("transcoder_04")
