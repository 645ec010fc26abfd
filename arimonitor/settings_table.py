"""The settings table: every key of arimonitor.ini with its default, converter (bounds included),
help text, and whether it is secret or settable from the console (`set`).

config.py loads and looks up these; `arictl get/set`, `arimonitor config` and the docs read
the same rows, so a key exists in exactly one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arimonitor import datatypes as dt
from arimonitor.config_servers import SERVER_SECTIONS


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
