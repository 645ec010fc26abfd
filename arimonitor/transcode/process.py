"""The `transcoder` program: measure the encoders, then serve jobs until SIGTERM."""

from __future__ import annotations

import logging
import os

from arimonitor.config import Config
from arimonitor.transcode.encoder import choose_encoders
from arimonitor.transcode.fetch import Fetcher
from arimonitor.transcode.worker import Worker


def run(cfg: Config, stopper, log: logging.Logger) -> int:
    choice = choose_encoders(seconds=10.0)
    for name, problem in choice.problems.items():
        log.warning("encoder %s unavailable: %s", name, problem)
    if not choice.encoders:
        log.error("no MP3 encoder works (lameenc and ffmpeg both failed); cannot convert")
        return 1
    log.info("encoders, fastest first: %s", ", ".join(
        f"{e.name} {choice.speed[e.name]:.0f}x realtime" for e in choice.encoders))
    # supervisord passes --name transcoder_00; run_process names the logger after it
    name = log.name if log.name and log.name != "root" else f"transcoder-{os.getpid()}"
    fetcher = Fetcher(cfg)  # the WAVs of servers on other hosts ([ari:NAME] recordings)
    worker = Worker(name, cfg["zmq.jobs"], cfg["zmq.results"], choice.encoders, stopper, log,
                    speed=choice.speed, hello_interval=cfg["transcoder.heartbeat"], fetcher=fetcher)
    try:
        return worker.run()
    finally:
        fetcher.close()
