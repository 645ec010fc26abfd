"""One table from supervisord program name to the module that runs it.

Each module exposes `run(cfg, stopper, log) -> int | None` and returns when `stopper` is set.
"""

from __future__ import annotations

import importlib
import sys

from arimonitor.process import run_process

PROCESSES = {
    "ari-sim": "arimonitor.sim.process",
    "engine": "arimonitor.engineproc.process",
    "ari-reader": "arimonitor.reader.process",
    "transcoder": "arimonitor.transcode.process",
    "clicktocall": "arimonitor.clicktocall.process",
    "bus": "arimonitor.bus.process",
}


def main(name: str, argv: list[str] | None = None) -> int:
    module = importlib.import_module(PROCESSES[name])
    return run_process(name, module.run, sys.argv[1:] if argv is None else argv)
