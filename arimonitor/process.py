"""What every arimonitor process shares: config, logging, a clean stop on SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable

from arimonitor.config import Config, ConfigError, load_config
from arimonitor.logs import setup_logging

EXIT_CONFIG = 78  # EX_CONFIG: supervisord shows it; a restart will not help


class Stopper:
    """Set by SIGTERM/SIGINT; loops poll `stopping` between short waits."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name = ""

    @property
    def stopping(self) -> bool:
        return self._event.is_set()

    @property
    def event(self) -> threading.Event:
        return self._event

    def stop(self, reason: str = "requested") -> None:
        self.signal_name = self.signal_name or reason
        self._event.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True if a stop came meanwhile."""
        return self._event.wait(seconds)

    def install(self) -> None:
        def handler(signum, _frame):
            self.stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def run_process(name: str, main: Callable[[Config, Stopper, logging.Logger], int | None],
                argv: list[str] | None = None) -> int:
    """Parse --config, load it, set up logging and signals, run `main`, log the exit."""
    parser = argparse.ArgumentParser(prog=name)
    parser.add_argument("--config", help="arimonitor.ini (default: $ARIMONITOR_CONFIG or conf/arimonitor.ini)")
    parser.add_argument("--name", default=name, help="process name in logs (transcoder_00, ...)")
    parser.add_argument("--server", type=int, default=0,
                        help="the Asterisk this process serves: 0 is [ari], then each [ari:NAME]")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config).for_server(args.server)
    except ConfigError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    log = setup_logging(args.name, cfg)
    stopper = Stopper()
    stopper.install()
    from arimonitor.levels import LevelListener

    LevelListener(cfg["zmq.publish"], args.name, stopper.event).start()
    log.info("%s starting (pid %d)", args.name, __import__("os").getpid())
    try:
        code = main(cfg, stopper, log) or 0
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return EXIT_CONFIG
    except Exception:
        log.exception("%s failed", args.name)
        return 1
    log.info("%s stopped (%s)", args.name, stopper.signal_name or "finished")
    return code
