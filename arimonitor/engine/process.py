"""The engine process (supervisord program `engine`)."""

from __future__ import annotations

import logging

from arimonitor.config import Config
from arimonitor.engine.app import Engine
from arimonitor.process import Stopper


def run(cfg: Config, stopper: Stopper, log: logging.Logger) -> int:
    engine = Engine(cfg)
    engine.run(lambda: stopper.stopping)
    return 0
