"""Placeholder process: runs, logs a heartbeat, stops cleanly on SIGTERM."""

from __future__ import annotations


def run(cfg, stopper, log) -> int:
    while not stopper.wait(5.0):
        log.debug("alive")
    return 0
