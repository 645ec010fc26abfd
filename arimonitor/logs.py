"""Logging for every process: one log file each, `<log>/<process>.log` (under supervisord its
captured stdout, else a rotating file written here, plus stdout).

The calls log (one line per call event) and the metrics log (a periodic counters line) are
separate files written through the `arimonitor.calls` and `arimonitor.metrics` loggers.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path

from arimonitor.config import Config

FORMAT = "%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s"
LINE_FORMAT = "%(asctime)s %(message)s"


PIKA_CONNECT_LOGGERS = ("pika.adapters.utils.connection_workflow",
                        "pika.adapters.utils.io_services_utils",
                        "pika.adapters.blocking_connection")


def _rotating(path: Path, cfg: Config, fmt: str) -> logging.Handler:
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=cfg["logging.max_bytes"], backupCount=cfg["logging.backups"], encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter(fmt))
    return handler


def setup_logging(process_name: str, cfg: Config, stdout: bool = True) -> logging.Logger:
    """Root logger to <log>/<process_name>.log (+ stdout); uncaught errors and warnings too."""
    log_dir = Path(cfg["paths.log"])
    log_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    # Under supervisord the process's stdout+stderr IS <log>/<name>.log (supervisord writes and
    # rotates it): one file, with whatever escapes logging too (a crash before logging is set
    # up, a message from C code). Alone (tests, `arimonitor sim`), the process writes it itself.
    supervised = "SUPERVISOR_ENABLED" in os.environ
    if not supervised:
        root.addHandler(_rotating(log_dir / f"{process_name}.log", cfg, FORMAT))
    if stdout or supervised:
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(console)
    root.setLevel(cfg["logging.level"])
    # pika logs every connection step at INFO; its warnings and errors are what matter
    logging.getLogger("pika").setLevel(logging.WARNING)
    # ...except a failed connect, which pika logs at ERROR with a traceback on every attempt
    # (7 lines a try while a broker restarts): our reconnect loops log it once per outage and
    # count the rest (repeats.py).
    for name in PIKA_CONNECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.captureWarnings(True)

    def excepthook(exc_type, exc, tb):
        logging.getLogger(process_name).critical("uncaught exception", exc_info=(exc_type, exc, tb))

    def thread_excepthook(args):
        logging.getLogger(process_name).critical(
            "uncaught exception in thread %s", args.thread.name if args.thread else "?",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    return logging.getLogger(process_name)


def setup_line_log(name: str, cfg: Config) -> logging.Logger:
    """`calls` or `metrics`: a separate file of plain lines, not copied to the process log."""
    logger = logging.getLogger(f"arimonitor.{name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        log_dir = Path(cfg["paths.log"])
        log_dir.mkdir(parents=True, exist_ok=True)
        logger.addHandler(_rotating(log_dir / f"{name}.log", cfg, LINE_FORMAT))
    return logger


def set_level(level: str) -> None:
    """Run-time level change (console `debug on|off`)."""
    logging.getLogger().setLevel(level)
