"""arimonitor.ini: one table of defaults, named converters, environment overrides.

Lookup order for a key: ARIMONITOR_<SECTION>_<KEY> in the environment, then the file, then
the default below. The file is `--config`, else $ARIMONITOR_CONFIG, else conf/arimonitor.ini
under the arimonitor home (the checkout that holds supervisord.conf).
"""

from __future__ import annotations

import configparser
import difflib
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from arimonitor import datatypes as dt
from arimonitor.config_servers import (
    ServerSectionError,
    convert_servers,
    named_sections,
)
from arimonitor.settings_table import (
    SERVER_SETTINGS,
    SETTINGS,
    SETTINGS_BY_NAME,
    ConfigError,
    Setting,
)


def find_home() -> Path:
    """The checkout that holds supervisord.conf; else the current directory."""
    env = os.environ.get("ARIMONITOR_HOME")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "supervisord.conf").exists():
        return here
    return Path.cwd().resolve()


class Config:
    """Typed, read-only view of arimonitor.ini plus overrides."""

    def __init__(self, values: dict[str, Any], raw: dict[str, str], path: Path | None, home: Path,
                 sources: dict[str, str] | None = None, base: dict[str, tuple[str, str]] | None = None,
                 named: dict[str, dict[str, str]] | None = None,
                 server_values: dict[str, dict[str, Any]] | None = None):
        self._values = values
        self._raw = raw
        self.path = path
        self.home = home
        # where each value comes from: default, file, environment, or set (the console)
        self._sources = sources or dict.fromkeys(raw, "default")
        # name -> (raw, source) before any `set`: what `unset` goes back to
        self._base = base or {n: (v, self._sources[n]) for n, v in raw.items()}
        # [ari:NAME]/[ami:NAME] as written, and converted, in file order
        self._named = named or {}
        self._server_values = server_values or {}

    @property
    def servers(self) -> list[str]:
        """Every Asterisk watched: the [ari] one first, then each [ari:NAME] in file order. A
        reader's supervisord process_num is its index here."""
        return [self._values["ari.server_id"], *self._server_values]

    def for_server(self, server: str | int) -> Config:
        """This config with the ari.* and ami.* of one server (by name or index): what that
        server's reader reads."""
        servers = self.servers
        if isinstance(server, int) and not 0 <= server < len(servers):
            raise ConfigError(f"no server number {server} (servers: {', '.join(servers)})")
        name = servers[server] if isinstance(server, int) else server
        if name == servers[0]:
            return self
        if name not in self._server_values:
            raise ConfigError(f"no server {name!r} (servers: {', '.join(servers)})")
        view = Config({**self._values, **self._server_values[name]},
                      {**self._raw, **self._named[name]}, self.path, self.home,
                      dict(self._sources), self._base, self._named, self._server_values)
        return view

    def get(self, name: str) -> Any:
        """`cfg.get("ari.url")`."""
        return self._values[name]

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def items(self) -> list[tuple[str, Any]]:
        return list(self._values.items())

    def display(self, name: str) -> str:
        """The value as an operator may see it: secrets masked."""
        setting = SETTINGS_BY_NAME[name]
        if setting.secret:
            return "********" if self._values[name] else ""
        return str(self._raw[name])

    def source(self, name: str) -> str:
        return self._sources[name]

    def base(self, name: str) -> tuple[str, str]:
        """(raw value, source) as the file, environment or default give it, before any `set`."""
        return self._base[name]

    def with_overrides(self, overrides: Mapping[str, str], source: str = "set") -> Config:
        """A new Config with some raw values replaced and everything converted again."""
        raw, sources = dict(self._raw), dict(self._sources)
        for name, value in overrides.items():
            if name not in SETTINGS_BY_NAME:
                raise ConfigError(f"unknown setting {name!r}")
            raw[name] = str(value)
            sources[name] = source
        return _convert(raw, self.path, self.home, sources, self._base, self._named)

    def without_override(self, name: str) -> Config:
        """Back to the file's (environment's, default's) value: the console's `unset`."""
        raw, source = self._base[name]
        return self.with_overrides({name: raw}, source=source)

    def take_values(self, other: Config) -> None:
        """Take `other`'s values in place (console `set`): every part that holds this Config,
        or a function reading it, sees the new value at its next use."""
        self._values.update(other._values)
        self._raw.update(other._raw)
        self._sources.update(other._sources)

    def reader_servers(self) -> list[int]:
        """Indexes in `servers` of the readers this host runs ([host] servers; empty: all).
        supervisord numbers them from the first chosen one, so each reader keeps its server's
        process number on every host: consecutive servers only."""
        names = self._values["host.servers"]
        if not names:
            return list(range(len(self.servers)))
        where = f" in {self.path}" if self.path else ""
        by_name = {name.lower(): n for n, name in enumerate(self.servers)}
        unknown = [name for name in names if name.lower() not in by_name]
        if unknown:
            raise ConfigError(f"[host] servers{where}: no server {', '.join(map(repr, unknown))} "
                              f"(servers: {', '.join(self.servers)})")
        chosen = sorted({by_name[name.lower()] for name in names})
        if chosen != list(range(chosen[0], chosen[-1] + 1)):
            raise ConfigError(f"[host] servers{where}: {', '.join(names)} are not consecutive in "
                              f"the config ({', '.join(self.servers)}); one host runs the readers "
                              f"of a run of servers, so that each keeps its process number")
        return chosen

    def recordings_folder(self, server: str | None = None) -> str | None:
        """Where `server`'s WAVs are on this host ([ari:NAME] recordings, not inherited: two
        servers never share a spool); None: fetched over its ARI (`fetch`, or a further
        server that names no folder)."""
        name = server or self.servers[0]
        first = name == self.servers[0]
        raw = self._raw["ari.recordings"] if first else self._named.get(name, {}).get("ari.recordings", "")
        raw = raw.strip()
        if raw.lower() == "fetch" or (not raw and not first):
            return None
        if not raw:
            return self._values["paths.recordings"]
        return _resolve_path(raw, self.home, self._values["paths.var"], self._values["paths.run"])

    def fetched_folder(self, server: str) -> str:
        """Where the WAVs fetched from `server` wait for their MP3 (ours: emptied as they are
        converted)."""
        return os.path.join(self._values["paths.var"], "fetched", server)

    def transcoder_workers(self) -> int:
        n = self._values["transcoder.workers"]
        return n if n > 0 else (os.cpu_count() or 1)


def _resolve_path(raw: str, home: Path, var: str, run: str) -> str:
    if not raw:
        return ""
    expanded = raw.format(home=str(home), var=var, run=run)
    p = Path(expanded).expanduser()
    return str(p if p.is_absolute() else (home / p))


def _convert(raw: dict[str, str], path: Path | None, home: Path, sources: dict[str, str] | None = None,
             base: dict[str, tuple[str, str]] | None = None,
             named: dict[str, dict[str, str]] | None = None) -> Config:
    def convert(name: str, value: str, section: str = "") -> Any:
        setting = SETTINGS_BY_NAME[name]
        try:
            return setting.convert(value)
        except ValueError as exc:
            where = f" in {path}" if path else ""
            raise ConfigError(f"bad value for [{section or setting.section}] {setting.key}{where}: "
                              f"{exc}") from None

    values = {setting.name: convert(setting.name, raw[setting.name]) for setting in SETTINGS}
    try:
        server_values = convert_servers(raw, named or {}, path, SERVER_SETTINGS, convert)
    except ServerSectionError as exc:
        raise ConfigError(str(exc)) from None
    var = _resolve_path(values["paths.var"], home, "", "")
    values["paths.var"] = var
    run = _resolve_path(values["paths.run"], home, var, "")
    for setting in SETTINGS:
        if setting.section in {"paths", "files"} or setting.name in _PATH_SETTINGS:
            values[setting.name] = _resolve_path(raw[setting.name], home, var, run)
        elif setting.convert in (dt.zmq_endpoint, dt.zmq_events_endpoint):
            values[setting.name] = values[setting.name].format(home=home, var=var, run=run)
    _check_metrics(values, path)
    _check_events(values, path)
    cfg = Config(values, raw, path, home, sources, base, named, server_values)
    cfg.reader_servers()  # an unknown name in [host] servers stops start-up here
    return cfg


def private_file_problem(path: Path, holds_secret: bool) -> str | None:
    """The one rule for every file that holds a secret (arimonitor.ini, endpoints_pjsip.def with
    PW:, __MQSERVERS__.DEF with a password): group and others may not read it."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if holds_secret and mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (f"{path} holds a password and is readable by others (mode {stat.S_IMODE(mode):o}); "
                f"run: chmod 600 {path}")
    return None


# A password in a v2.7 file: `PW:value` on an endpoint line, `password = value` in a server section.
_V27_SECRETS = {"files.endpoints": re.compile(rb"(?i)\bPW:[^\s;]"),
                "files.mqservers": re.compile(rb"(?im)^\s*password\s*=\s*\S")}


def secret_file_problems(cfg: Config) -> list[str]:
    """The v2.7 files that hold a password and are readable by others (the ini is checked on load)."""
    found = []
    for name, pattern in _V27_SECRETS.items():
        path = Path(cfg[name])
        try:
            holds = bool(pattern.search(path.read_bytes()))
        except OSError:
            continue
        problem = private_file_problem(path, holds)
        if problem:
            found.append(problem)
    return found


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_PATH_SETTINGS = frozenset({"contacts.asterisk_cli", "zmq.keys", "zmq.readers"})


def _check_events(values: dict[str, Any], path: Path | None) -> None:
    """Events from a reader on another host cross the network: only authenticated and encrypted."""
    endpoint = values["zmq.events"]
    if not values["zmq.curve"] and not dt.is_loopback_endpoint(endpoint):
        where = f" in {path}" if path else ""
        raise ConfigError(f"[zmq] events = {endpoint}{where} is not loopback: set [zmq] curve = yes "
                          "(keys from 'arimonitor keys'), or use tcp://127.0.0.1 or ipc://")


def _check_metrics(values: dict[str, Any], path: Path | None) -> None:
    """/metrics shows what the PBX is doing: beyond loopback only behind a password."""
    where = f" in {path}" if path else ""
    if values["metrics.port"] and values["metrics.host"] not in LOOPBACK and not (
            values["metrics.user"] and values["metrics.password"]):
        raise ConfigError(f"[metrics] host = {values['metrics.host']}{where} is not loopback: "
                          "set [metrics] user and password (basic auth), or use 127.0.0.1")
    if bool(values["metrics.user"]) != bool(values["metrics.password"]):
        raise ConfigError(f"[metrics] user and password{where}: set both or neither")


def _check_private(path: Path, parser: configparser.ConfigParser) -> None:
    secret = {s.name for s in SETTINGS if s.secret}
    holds_secret = any(  # [ari:pbx2] password too
        f"{section.partition(':')[0]}.{key}" in secret and parser.get(section, key).strip()
        for section in parser.sections() for key in parser.options(section))
    problem = private_file_problem(path, holds_secret)
    if problem:
        raise ConfigError(problem)


def _check_repeated_keys(text: str, path: Path) -> None:
    """A key given twice (in one section, or in two copies of it) is a contradiction: refused
    with both line numbers, never "last one wins" silently."""
    seen: dict[tuple[str, str], int] = {}
    section = ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("[") and "]" in stripped:
            section = stripped[1:stripped.index("]")].strip()
            continue
        if line[:1].isspace():  # a continuation line
            continue
        key = stripped.split("=", 1)[0].split(":", 1)[0].strip().lower()
        if (section, key) in seen:
            raise ConfigError(f"[{section}] {key} is set twice in {path} (lines {seen[section, key]} "
                              f"and {number}); keep one")
        seen[section, key] = number


# ARIMONITOR_* names that are not settings: set by `arimonitor start` for supervisord, or
# read by one tool (the prompt's history file, a test hook of the click-to-call consumer).
NOT_SETTINGS = frozenset({"ARIMONITOR_CONFIG", "ARIMONITOR_HOME", "ARIMONITOR_PYTHON", "ARIMONITOR_RUN_DIR",
                          "ARIMONITOR_LOG_DIR", "ARIMONITOR_TRANSCODERS", "ARIMONITOR_READERS", "ARIMONITOR_FIRST_READER",
                          "ARIMONITOR_DEMO", "ARIMONITOR_CLICKTOCALL", "ARIMONITOR_BUS", "ARIMONITOR_USER",
                          "ARIMONITOR_RUN_ENGINE", "ARIMONITOR_RUN_READER", "ARIMONITOR_RUN_TRANSCODERS",
                          "ARIMONITOR_LOG_MAX_BYTES", "ARIMONITOR_LOG_BACKUPS", "ARIMONITOR_HISTORY", "ARIMONITOR_C2C_TEST_ACK_DELAY"})
# The test suite's own knobs (the live suite's Asterisk launcher, the fault runs' scale): the
# processes a test starts inherit them. No settings section is called "test".
TEST_KNOBS = "ARIMONITOR_TEST_"


def env_name(setting: Setting) -> str:
    return f"ARIMONITOR_{setting.section.upper()}_{setting.key.upper()}"


def _check_environment(environ: Mapping[str, str]) -> None:
    """A typo'd variable is refused like a typo'd key in the file, never ignored silently."""
    known = {env_name(s) for s in SETTINGS} | NOT_SETTINGS
    for name in sorted(environ):
        if name.startswith("ARIMONITOR_") and name not in known and not name.startswith(TEST_KNOBS):
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]}?" if close else " (ARIMONITOR_<SECTION>_<KEY>, see conf/arimonitor.ini)"
            raise ConfigError(f"unknown environment variable {name}{hint}")


def load_config(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None,
                check_private: bool = True) -> Config:
    """Read, override, convert and check; raises ConfigError naming the key at fault.
    check_private=False: `arimonitor stop`/`status` work even on a file start would refuse."""
    environ = os.environ if environ is None else environ
    home = find_home() if "ARIMONITOR_HOME" not in environ else Path(environ["ARIMONITOR_HOME"]).resolve()
    explicit = path or environ.get("ARIMONITOR_CONFIG")
    file_path = Path(explicit) if explicit else home / "conf" / "arimonitor.ini"
    # strict=False: a section may appear twice (the shipped file lists every section with its
    # keys commented out, and the README's snippet pasted below it repeats [ari]); a key set
    # twice is still refused, by _check_repeated_keys.
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    if file_path.exists():
        try:
            with open(file_path, encoding="utf-8-sig") as fh:
                text = fh.read()
            _check_repeated_keys(text, file_path)
            parser.read_string(text, str(file_path))
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {file_path}: {exc}") from None
        if check_private:
            _check_private(file_path, parser)
    elif explicit:
        raise ConfigError(f"config file {file_path} does not exist")
    try:
        named = named_sections(parser, file_path, SETTINGS_BY_NAME)
    except ServerSectionError as exc:
        raise ConfigError(str(exc)) from None
    known_sections = {s.section for s in SETTINGS}
    for section in parser.sections():
        if ":" in section:  # [ari:NAME], checked above
            continue
        if section not in known_sections:
            raise ConfigError(f"unknown section [{section}] in {file_path}")
        for key in parser.options(section):
            if f"{section}.{key}" not in SETTINGS_BY_NAME:
                keys = [s.key for s in SETTINGS if s.section == section]
                close = difflib.get_close_matches(key, keys, n=1, cutoff=0.7)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise ConfigError(f"unknown key [{section}] {key} in {file_path}{hint}")
    _check_environment(environ)
    raw: dict[str, str] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        if env_name(setting) in environ:
            raw[setting.name], sources[setting.name] = environ[env_name(setting)], "environment"
        elif parser.has_option(setting.section, setting.key):
            raw[setting.name], sources[setting.name] = parser.get(setting.section, setting.key), "file"
        else:
            raw[setting.name], sources[setting.name] = setting.default, "default"
    return _convert(raw, file_path if file_path.exists() else None, home, sources, named=named)
