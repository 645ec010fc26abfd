"""The engine process (supervisord program `engine`)."""

from __future__ import annotations

import logging

from arimonitor.config import SETTINGS_BY_NAME, Config, ConfigError
from arimonitor.engine.store import saved_settings
from arimonitor.engineproc.app import Engine
from arimonitor.logs import set_level
from arimonitor.process import Stopper

log = logging.getLogger(__name__)


def run(cfg: Config, stopper: Stopper, log: logging.Logger) -> int:
    engine = Engine(apply_saved(cfg, log))  # what `set` saved survives a restart
    engine.run(lambda: stopper.stopping)
    return 0


def apply_saved(cfg: Config, logger: logging.Logger | None = None) -> Config:
    """The engine's start-up config: the file's plus what `set` saved (still settable, valid,
    and not superseded by an edit of the file made after the set)."""
    logger = logger or log
    good: dict[str, str] = {}
    for name, (value, base) in saved_settings(cfg["paths.database"]).items():
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None or not setting.settable:
            logger.warning("saved setting %s ignored: no longer settable at run time", name)
            continue
        now_raw, now_source = cfg.base(name)
        if base is not None and base != now_raw:
            logger.info("saved setting %s = %s ignored: the %s now says %s (changed after the set)",
                        name, "********" if setting.secret else value, now_source, now_raw)
            continue
        try:
            cfg.with_overrides({**good, name: value})
        except ConfigError as exc:
            logger.warning("saved setting %s ignored: %s", name, exc)
            continue
        good[name] = value
    if not good:
        return cfg
    new = cfg.with_overrides(good)
    logger.info("settings saved by 'set' applied: %s",
                ", ".join(f"{n}={new.display(n)}" for n in sorted(good)))
    if "logging.level" in good:
        set_level(new["logging.level"])
    return new
