"""Console commands `get [NAME]`, `set NAME VALUE`, `unset NAME`: the engine's runtime configuration.

`get` says where each value comes from (default, file, environment, set); `unset` forgets a
`set` and goes back to the file's value; a `set` saved before the file was edited to another
value gives way to the file at the next start. Bounds live in config.SETTINGS (the converters),
so the file, the environment and `set` refuse the same values.

Only settings declared `settable=True` in config.SETTINGS can be set, and only those whose
readers look the value up at use time (the engine and its components keep a reference to one
Config and read `cfg[name]` when they need it). A `set` builds a new Config with
`with_overrides`, swaps it into every holder of the old one, applies the side effects the
setting needs (a log level), and records the raw value in the engine's store
(`runtime_settings`) so `engineproc.process.apply_saved()` puts it back when the engine starts
again.
"""

from __future__ import annotations

import difflib
import logging
from typing import Any

from arimonitor import protocol
from arimonitor.commands import render
from arimonitor.commands.registry import Arg, CommandError, Registry, Reply
from arimonitor.config import SETTINGS, SETTINGS_BY_NAME, Config, ConfigError
from arimonitor.logs import set_level

log = logging.getLogger(__name__)

def _unknown(name: str) -> CommandError:
    close = difflib.get_close_matches(name, list(SETTINGS_BY_NAME), n=3, cutoff=0.5)
    if not close:  # "levle" -> logging.level: compare with the key alone too
        by_key: dict[str, list[str]] = {}
        for full in SETTINGS_BY_NAME:
            by_key.setdefault(full.split(".", 1)[1], []).append(full)
        key = name.rsplit(".", 1)[-1]
        close = [full for k in difflib.get_close_matches(key, list(by_key), n=3, cutoff=0.6)
                 for full in by_key[k]][:3]
    hint = f"; did you mean: {', '.join(close)}?" if close else "; 'get' lists every setting"
    return CommandError(protocol.E_NOT_FOUND, f"no setting {name!r}{hint}", data={"suggestions": close})


def _row(cfg: Config, name: str) -> dict[str, Any]:
    s = SETTINGS_BY_NAME[name]
    default = "********" if s.secret and s.default else s.default
    describe = getattr(s.convert, "describe", None)
    return {"name": name, "value": cfg.display(name), "default": default, "source": cfg.source(name),
            "settable": s.settable, "secret": s.secret, "help": s.help,
            "bounds": describe() if describe else "", "saved": cfg.source(name) == "set"}


def register(registry: Registry) -> None:
    settable = [s.name for s in SETTINGS if s.settable]

    @registry.command("get", category="settings", summary="show one setting, or all (secrets masked)",
                      args=[Arg("name", "section.key, e.g. logging.level", optional=True, complete="setting")],
                      examples=["get", "get logging.level"],
                      description=f"Settable at run time: {', '.join(settable)}.")
    def get(ctx, name=None) -> Reply:
        if name is None:
            rows = [_row(ctx.cfg, s.name) for s in SETTINGS]
            text = render.table(
                [(r["name"], r["value"], r["source"], "yes" if r["settable"] else "", r["help"]) for r in rows],
                ("SETTING", "VALUE", "FROM", "SETTABLE", "WHAT"), title="settings", max_width=48)
            return Reply(rows, text)
        if name not in SETTINGS_BY_NAME:
            raise _unknown(name)
        row = _row(ctx.cfg, name)
        default = row["default"] or '""'
        from_text = {"set": "set at the console (saved; 'unset' goes back to the file)",
                     "file": f"the file {ctx.cfg.path}", "environment": "the environment",
                     "default": "the default"}[row["source"]]
        text = (f"{name} = {row['value']}  (from {from_text}; default {default}"
                f"{'; settable' if row['settable'] else '; fixed at start'}"
                f"{'; ' + row['bounds'] if row['bounds'] else ''})\n  {row['help']}")
        return Reply(row, text)

    @registry.command("unset", category="settings",
                      summary="forget a value set at the console: back to the file's (or default)",
                      args=[Arg("name", "a setting changed with 'set'", complete="setting")],
                      examples=["unset transcoder.bitrate"], privileged=True)
    def unset(ctx, name) -> Reply:
        if name not in SETTINGS_BY_NAME:
            raise _unknown(name)
        if not ctx.forget_setting(name) and ctx.cfg.source(name) != "set":
            raise CommandError(protocol.E_NOT_FOUND, f"{name} was not set at the console; it comes from "
                                                     f"the {ctx.cfg.source(name)}")
        old_display = ctx.cfg.display(name)
        new = ctx.cfg.without_override(name)
        ctx.take_config(new)
        _side_effects(ctx, name, new)
        log.info("setting %s back to the %s's value %s (was %s)", name, new.source(name), new.display(name),
                 old_display)
        data = {"name": name, "old": old_display, "value": new.display(name), "source": new.source(name)}
        return Reply(data, f"{name} = {new.display(name)} (from the {new.source(name)}; was {old_display})")

    @registry.command("set", category="settings", summary="change a setting now; kept across restarts",
                      args=[Arg("name", "a settable setting (see 'get')", complete="setting"),
                            Arg("value", "the new value, as in arimonitor.ini")],
                      examples=["set logging.level DEBUG", "set transcoder.bitrate 64",
                                "set ari.probe_interval 10s"],
                      description=f"Settable at run time: {', '.join(settable)}.",
        privileged=True)
    def set_(ctx, name, value) -> Reply:
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None:
            raise _unknown(name)
        if not setting.settable:
            raise CommandError(protocol.E_NOT_SETTABLE,
                               f"{name} is read at start only; change it in the config file and "
                               f"restart (settable now: {', '.join(settable)})")
        try:
            setting.convert(value)
            new = ctx.cfg.with_overrides({name: value})
        except (ValueError, ConfigError) as exc:
            raise CommandError(protocol.E_BAD_VALUE, f"bad value for {name}: {exc}") from None
        old_display = ctx.cfg.display(name)
        ctx.save_setting(name, value)  # recorded first: a set that is shown is a set that survives
        ctx.take_config(new)  # every holder of the one Config reads the new value at its next use
        _side_effects(ctx, name, new)
        log.warning("setting %s changed from %s to %s by the console", name, old_display,
                    new.display(name))
        data = {"name": name, "old": old_display, "value": new.display(name), "saved": True}
        return Reply(data, f"{name} = {new.display(name)} (was {old_display}); in effect now, "
                           "saved: it survives an engine restart")


def _side_effects(ctx: Any, name: str, new: Config) -> None:
    if name == "logging.level":
        set_level(new[name])
        publish_level(ctx, "all", new[name])


def publish_level(ctx: Any, process: str, level: str) -> None:
    """protocol.level_change on the engine PUB (every process's LevelListener follows it)."""
    topic, body = protocol.level_change(process, level)
    ctx.publish(topic.decode(), protocol.loads(body))
