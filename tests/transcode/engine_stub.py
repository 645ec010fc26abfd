"""The engine side of the transcoder alone, as a process a test can kill -9.

Usage: engine_stub.py APPLIED_LOG   (config from $ARIMONITOR_CONFIG)
Queues every settled WAV of paths.recordings at start (rescan), serves results, and appends
one line per applied `recording.mp3` to APPLIED_LOG.
"""

from __future__ import annotations

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from arimonitor.config import load_config
from arimonitor.engine.store import Store
from arimonitor.transcode.component import TranscodeComponent
from tests.transcode.loop import SimpleLoop


def main() -> int:
    applied = open(sys.argv[1], "a", buffering=1)  # noqa: SIM115  open until killed
    cfg = load_config()
    store = Store(cfg["paths.database"])
    for migration in TranscodeComponent.migrations():
        store.migrate(*migration)

    def notify(topic: str, body: dict) -> None:
        if topic == "recording.mp3":
            applied.write(f"{body['job_id']}\n")

    component = TranscodeComponent(cfg, store.connection, notify=notify, settle=0.0)
    loop = SimpleLoop()
    component.start(loop)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *a: stopping.append(1))
    while not stopping:
        loop.run_once(0.1)
    component.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
