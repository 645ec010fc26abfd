"""Loader for __MQSERVERS__.DEF: RabbitMQ servers for click-to-call, tried in file order.

Each `[name]` section has host, port, user, password, vhost, queue. host and queue are
required; port defaults to 5672, vhost to "/", user and password to RabbitMQ's guest/guest.
A server with a missing required key or a bad port is reported and skipped: connecting to a
half-configured server would only fail later, further from the cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from arimonitor import datatypes
from arimonitor.v27.ini import Section, parse_sections
from arimonitor.v27.problems import Loaded, Problems
from arimonitor.v27.source import PathLike, decode_lines, read_lines

_DEFAULTS = {"port": "5672", "vhost": "/", "user": "guest", "password": "guest"}
_REQUIRED = ("host", "queue")
_KNOWN = {*_DEFAULTS, *_REQUIRED}


@dataclass(frozen=True)
class MQServer:
    name: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    vhost: str
    queue: str
    line: int  # line of the [section] header


MQServerTable = tuple[MQServer, ...]  # in file order: the order click-to-call tries them


def load_mqservers(path: PathLike) -> Loaded[MQServerTable]:
    problems = Problems(str(path), values_are_secret=True)
    lines = read_lines(path, problems)
    if lines is None:
        return Loaded((), problems.items, readable=False)
    return Loaded(_build(lines, problems), problems.items)


def parse_mqservers(data: bytes, file: str = "__MQSERVERS__.DEF") -> Loaded[MQServerTable]:
    """Like load_mqservers, from bytes already in memory."""
    problems = Problems(file, values_are_secret=True)
    return Loaded(_build(decode_lines(data, problems), problems), problems.items)


def _build(lines: list[str], problems: Problems) -> MQServerTable:
    servers = (_server(section, problems) for section in parse_sections(lines, problems))
    return tuple(server for server in servers if server is not None)


def _server(section: Section, problems: Problems) -> MQServer | None:
    entries = section.entries
    for key, entry in entries.items():
        if key not in _KNOWN:  # most likely a typo of a known key: say so, keep the server
            problems.warning(entry.line, f"unknown key '{key}' in [{section.name}]; ignored",
                             entry.text)
    missing = [key for key in _REQUIRED if not (key in entries and entries[key].value)]
    if missing:
        problems.error(section.line, f"server [{section.name}] has no {' or '.join(missing)}; "
                                     "server skipped", f"[{section.name}]")
        return None
    values = {key: entries[key].value if key in entries else default
              for key, default in _DEFAULTS.items()}
    try:
        port = datatypes.port_number(values["port"])
        if port == 0:
            raise ValueError("0 is not a port a server listens on")
    except ValueError as exc:
        problems.error(entries["port"].line, f"bad port ({exc}); server [{section.name}] skipped",
                       entries["port"].text)
        return None
    return MQServer(
        name=section.name,
        host=entries["host"].value,
        port=port,
        user=values["user"],
        password=values["password"],
        vhost=values["vhost"],
        queue=entries["queue"].value,
        line=section.line,
    )
