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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arimonitor import datatypes as dt
from arimonitor.config_servers import (
    SERVER_SECTIONS,
    ServerSectionError,
    convert_servers,
    named_sections,
)


class ConfigError(Exception):
    """A configuration that must stop start-up; the message names the key."""


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    default: str
    convert: Callable[[Any], Any]
    help: str
    secret: bool = False
    # settable at run time from the console (`set NAME VALUE`)
    settable: bool = False

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


def _s(section, key, default, convert, help, **kw) -> Setting:
    return Setting(section, key, default, convert, help, **kw)


# Paths may use {home}, {var} and {run}; relative paths are taken from the arimonitor home.
SETTINGS: tuple[Setting, ...] = (
    _s("ari", "url", "http://127.0.0.1:8088/ari", dt.http_url, "ARI base URL (http.conf prefix + /ari)"),
    _s("ari", "user", "arimonitor", dt.text, "ARI user (ari.conf)"),
    _s("ari", "password", "", dt.text, "ARI password (ari.conf)", secret=True),
    _s("ari", "app", "arimonitor", dt.text, "Stasis application name"),
    _s("ari", "server_id", "asterisk1", dt.server_name,
       "name of the [ari] Asterisk in events, logs, arictl and the database; a further "
       "server's name is its section's ([ari:pbx2] is pbx2)"),
    _s("ari", "ping_interval", "10s", dt.Bounded(dt.seconds, "1s", "5m"), "WebSocket ping interval"),
    _s("ari", "reconnect_max", "30s", dt.Bounded(dt.seconds, "1s", "1h"), "longest wait between reconnects"),
    _s("ari", "rest_timeout", "5s", dt.Bounded(dt.seconds, "100ms", "5m"), "timeout of one ARI REST request"),
    _s("ari", "probe_interval", "5s", dt.Bounded(dt.seconds, "500ms", "1h"), "GET /asterisk/info liveness probe", settable=True),
    _s("ari", "state_timeout", "10s", dt.Bounded(dt.seconds, "100ms", "10m"),
       "how long a request made on an event waits for the state it needs (a channel's "
       "StasisStart, a bridge) before it fails", settable=True),
    _s("ari", "recordings", "", dt.text,
       "this server's WAV folder on this host; empty: [paths] recordings for [ari], fetched "
       "over ARI for an [ari:NAME]; fetch: always fetched (Asterisk on another host)"),
    _s("ami", "enabled", "no", dt.boolean, "read registered contacts from AMI PJSIPShowContacts"),
    _s("ami", "host", "127.0.0.1", dt.loopback_host, "AMI host (loopback only)"),
    _s("ami", "port", "5038", dt.port_number, "AMI port"),
    _s("ami", "user", "arimonitor", dt.text, "AMI user (manager.conf)"),
    _s("ami", "password", "", dt.text, "AMI secret", secret=True),
    _s("contacts", "asterisk_cli", "", dt.path,
       "path of the asterisk binary for 'pjsip show contacts' when on the Asterisk host"),
    _s("files", "endpoints", "conf/endpoints_pjsip.def", dt.path, "v2.7 endpoints file"),
    _s("files", "clients", "conf/__CLIENTES__.DEF", dt.path, "v2.7 clients file"),
    _s("files", "mqservers", "conf/__MQSERVERS__.DEF", dt.path, "v2.7 RabbitMQ servers file"),
    _s("paths", "var", "var", dt.path, "root of everything arimonitor writes"),
    _s("paths", "log", "{var}/log", dt.path, "process logs"),
    _s("paths", "run", "{var}/run", dt.path, "sockets and pid files"),
    _s("paths", "spool", "{var}/spool", dt.path, "work files"),
    _s("paths", "database", "{var}/arimonitor.sqlite", dt.path, "SQLite state file"),
    _s("paths", "recordings", "{var}/recordings", dt.path, "WAV files Asterisk writes"),
    _s("paths", "mp3", "{var}/mp3", dt.path, "MP3 output"),
    _s("paths", "mixmonitor", "", dt.path, "extra folder of MixMonitor WAVs to convert"),
    _s("zmq", "events", "ipc://{run}/events.sock", dt.zmq_events_endpoint,
       "reader PUSH -> engine PULL; beyond loopback only with [zmq] curve = yes"),
    _s("zmq", "curve", "no", dt.boolean,
       "CURVE authentication and encryption on the events socket (needed beyond loopback)"),
    _s("zmq", "keys", "conf/keys", dt.path,
       "this host's CURVE keys (arimonitor keys) and, on a reader host, the engine's engine.key"),
    _s("zmq", "readers", "conf/keys/readers", dt.path,
       "public keys (*.key) of the readers the engine accepts; read at engine start"),
    _s("host", "role", "all", dt.host_role,
       "what runs here: all, central (everything but the reader) or reader (only the reader)"),
    _s("host", "servers", "", dt.server_names,
       "the servers whose readers run here (names, comma-separated; empty: every server)"),
    _s("zmq", "control", "ipc://{run}/control.sock", dt.zmq_endpoint, "arictl REQ -> engine ROUTER"),
    _s("zmq", "publish", "ipc://{run}/publish.sock", dt.zmq_endpoint, "engine PUB -> watchers SUB"),
    _s("zmq", "jobs", "ipc://{run}/jobs.sock", dt.zmq_endpoint, "engine PUSH -> transcoders PULL"),
    _s("zmq", "results", "ipc://{run}/results.sock", dt.zmq_endpoint, "transcoders PUSH -> engine PULL"),
    _s("logging", "level", "INFO", dt.log_level, "log level of every process", settable=True),
    _s("logging", "max_bytes", "50MB", dt.byte_size, "size of one log file before rotation"),
    _s("logging", "backups", "10", dt.integer, "rotated log files kept"),
    _s("logging", "metrics_interval", "60s", dt.Bounded(dt.seconds, "1s", "1d"), "period of the metrics log line", settable=True),
    _s("transcoder", "workers", "0", dt.integer, "transcoder processes; 0 = one per CPU core"),
    _s("transcoder", "bitrate", "32", dt.choice(*dt.MP3_BITRATES), "MP3 bitrate in kbit/s", settable=True),
    _s("transcoder", "delete_wav", "no", dt.boolean, "delete a WAV once its MP3 is verified", settable=True),
    _s("transcoder", "job_deadline", "120s", dt.seconds, "resend a job with no result after this"),
    _s("transcoder", "max_attempts", "5", dt.positive_integer, "tries before a job is marked failed"),
    _s("transcoder", "heartbeat", "2s", dt.seconds,
       "a worker's hello interval; silent for three of them, it is gone and its jobs are resent"),
    _s("recordings", "default_record", "no", dt.boolean, "record clients with no gravar= line (engine; clicktocall reads it at start)",
       settable=True),
    _s("clicktocall", "enabled", "yes", dt.boolean, "run the RabbitMQ click-to-call consumer"),
    _s("clicktocall", "prefetch", "50", dt.positive_integer, "unacked messages per consumer"),
    _s("clicktocall", "default_timeout", "30s", dt.seconds, "ring time when a request gives none"),
    _s("clicktocall", "max_timeout", "120s", dt.seconds, "longest ring time a request may ask"),
    _s("clicktocall", "trunk_dial", "PJSIP/{number}@trunk", dt.text, "dial string for phone numbers"),
    _s("clicktocall", "results_exchange", "arimonitor.c2c.results", dt.text, "exchange for outcomes"),
    _s("clicktocall", "retry_delay", "5s", dt.seconds, "wait before a request is tried again"),
    _s("clicktocall", "max_attempts", "20", dt.positive_integer, "retries before a request is dead-lettered (retries_exhausted)"),
    _s("clicktocall", "max_age", "10m", dt.seconds, "oldest a request may be and still be retried (retries_exhausted)"),
    _s("clicktocall", "max_wait", "5m", dt.seconds,
       "refuse a request whose AMQP timestamp is older than this (0 = no limit)"),
    _s("clicktocall", "dead_letter_max", "10000", dt.positive_integer,
       "most messages kept in <queue>.dead (the oldest go first, counted as dead_dropped)"),
    _s("clicktocall", "dead_letter_max_age", "7d", dt.seconds,
       "oldest dead letter kept in <queue>.dead (older ones go, counted as dead_dropped)"),
    _s("clicktocall", "publishers", "", dt.text,
       "AMQP user -> clients it may act for ('web1: 101 102; ops: *'); empty = not checked"),
    _s("clicktocall", "trunk_numbers", "", dt.text,
       "client -> pattern of numbers it may dial through the trunk ('101: 0800[0-9]{7}'); empty = none"),
    _s("clicktocall", "cross_client", "", dt.text,
       "clients that may ring another client's endpoint ('101 120' or '*'); empty = none"),
    _s("clicktocall", "free_caller_id", "", dt.text,
       "clients that may set any caller ID ('*' = all); others: digits and their own name"),
    _s("clicktocall", "failback_check", "30s", dt.seconds,
       "on a later MQ server, how often to check whether the first is back"),
    _s("bus", "enabled", "no", dt.boolean,
       "publish what the engine concludes to a RabbitMQ topic exchange (the events bus)"),
    _s("bus", "exchange", "arimonitor.events", dt.text, "events bus exchange (topic, durable)"),
    _s("bus", "host", "127.0.0.1", dt.text, "events bus RabbitMQ host"),
    _s("bus", "port", "5672", dt.port_number, "events bus RabbitMQ port"),
    _s("bus", "vhost", "/", dt.text, "events bus RabbitMQ virtual host"),
    _s("bus", "user", "guest", dt.text, "events bus RabbitMQ user"),
    _s("bus", "password", "guest", dt.text,
       "events bus RabbitMQ password (guest: RabbitMQ's loopback-only default)", secret=True),
    _s("bus", "buffer", "100000", dt.positive_integer,
       "events kept while the broker is down or slow; beyond it the oldest are dropped"),
    _s("console", "manager_enabled", "yes", dt.boolean, "serve the v2.7 line console"),
    _s("console", "manager_host", "127.0.0.1", dt.loopback_host, "manager port address"),
    _s("console", "manager_port", "1101", dt.port_number, "manager port (v2.7: 1101)"),
    _s("console", "manager_changes", "no", dt.boolean,
       "let the manager port (no login) change settings and show passwords"),
    _s("console", "timeout", "5s", dt.seconds, "arictl reply timeout"),
    _s("metrics", "host", "127.0.0.1", dt.text,
       "address of /metrics and /healthz; beyond loopback only with metrics.user and password"),
    _s("metrics", "port", "9731", dt.port_number, "Prometheus port of the engine; 0 = off"),
    _s("metrics", "user", "", dt.text, "basic-auth user for /metrics (needed off loopback)"),
    _s("metrics", "password", "", dt.text, "basic-auth password for /metrics", secret=True),
    _s("sim", "host", "127.0.0.1", dt.loopback_host, "simulator address"),
    _s("sim", "port", "8088", dt.port_number, "simulator port (REST + WebSocket)"),
    _s("sim", "ami_port", "5038", dt.port_number, "simulator AMI port"),
    _s("sim", "seed", "1", dt.integer, "simulator random seed"),
    _s("sim", "demo_traffic", "yes", dt.boolean, "steady varied traffic in demo mode"),
)

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
# what each further server ([ari:NAME], [ami:NAME]) has of its own (config_servers.py)
SERVER_SETTINGS = [s.name for s in SETTINGS if s.section in SERVER_SECTIONS]


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
# read by one tool (the prompt's history file, a test hook of the click-to-call consumer, the
# live-Asterisk tests' launcher).
NOT_SETTINGS = frozenset({"ARIMONITOR_CONFIG", "ARIMONITOR_HOME", "ARIMONITOR_PYTHON", "ARIMONITOR_RUN_DIR",
                          "ARIMONITOR_LOG_DIR", "ARIMONITOR_TRANSCODERS", "ARIMONITOR_READERS", "ARIMONITOR_FIRST_READER",
                          "ARIMONITOR_DEMO", "ARIMONITOR_CLICKTOCALL", "ARIMONITOR_BUS", "ARIMONITOR_USER",
                          "ARIMONITOR_RUN_ENGINE", "ARIMONITOR_RUN_READER", "ARIMONITOR_RUN_TRANSCODERS",
                          "ARIMONITOR_LOG_MAX_BYTES", "ARIMONITOR_LOG_BACKUPS", "ARIMONITOR_HISTORY", "ARIMONITOR_C2C_TEST_ACK_DELAY",
                          "ARIMONITOR_TEST_ASTERISK"})


def env_name(setting: Setting) -> str:
    return f"ARIMONITOR_{setting.section.upper()}_{setting.key.upper()}"


def _check_environment(environ: Mapping[str, str]) -> None:
    """A typo'd variable is refused like a typo'd key in the file, never ignored silently."""
    known = {env_name(s) for s in SETTINGS} | NOT_SETTINGS
    for name in sorted(environ):
        if name.startswith("ARIMONITOR_") and name not in known:
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
