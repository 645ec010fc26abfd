"""The engine process (supervisord program `engine`)."""

from __future__ import annotations

import logging

from arimonitor.commands.settings import apply_saved
from arimonitor.config import Config
from arimonitor.engineproc.app import Engine
from arimonitor.process import Stopper


def run(cfg: Config, stopper: Stopper, log: logging.Logger) -> int:
    engine = Engine(apply_saved(cfg, log))  # what `set` saved survives a restart
    engine.run(lambda: stopper.stopping)
    return 0
