"""Small named converters for configuration and settable values.

Each takes the raw text an operator wrote and returns a typed value, or raises ValueError
with a message that reads well after "bad value for [section] key: ".
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_TRUE = {"1", "true", "yes", "on", "s", "sim", "y"}
_FALSE = {"0", "false", "no", "off", "n", "nao", "não"}


def boolean(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean (use yes/no, true/false, on/off, 1/0)")


def integer(text: str | int) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def positive_integer(text: str | int) -> int:
    value = integer(text)
    if value < 1:
        raise ValueError(f"{text!r} must be 1 or more")
    return value


def port_number(text: str | int) -> int:
    value = integer(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"{text!r} is not a TCP port (0-65535)")
    return value


_SECONDS = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*")
_SECONDS_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def seconds(text: str | float) -> float:
    """'5', '1.5s', '250ms', '2m', '1h' -> seconds as a float."""
    if isinstance(text, (int, float)):
        return float(text)
    match = _SECONDS.fullmatch(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration (examples: 5, 1.5s, 250ms, 2m, 1h)")
    return float(match.group(1)) * _SECONDS_UNIT[match.group(2)]


_SIZE = re.compile(r"\s*([0-9]+)\s*([kmg]?)b?\s*", re.IGNORECASE)
_SIZE_UNIT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def byte_size(text: str | int) -> int:
    """'50MB', '512k', '1024' -> bytes."""
    if isinstance(text, int):
        return text
    match = _SIZE.fullmatch(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 1024, 512KB, 50MB, 1GB)")
    return int(match.group(1)) * _SIZE_UNIT[match.group(2).lower()]


def log_level(text: str) -> str:
    value = str(text).strip().upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError(f"{text!r} is not a log level (DEBUG, INFO, WARNING, ERROR)")
    return value


def http_url(text: str) -> str:
    value = str(text).strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s) URL (example: http://127.0.0.1:8088/ari)")
    if parts.username or parts.password:
        raise ValueError("put the ARI user and password in [ari] user/password, not in the URL")
    return value


def zmq_endpoint(text: str) -> str:
    """ipc://path, or tcp:// on loopback only: control sockets never face the network."""
    value = str(text).strip()
    if value.startswith("ipc://") and len(value) > len("ipc://"):
        return value
    if value.startswith("tcp://"):
        if is_loopback_endpoint(value):
            return value
        raise ValueError(f"{text!r} binds beyond loopback; use 127.0.0.1 or an ipc:// path")
    raise ValueError(f"{text!r} is not a ZeroMQ endpoint (ipc://PATH or tcp://127.0.0.1:PORT)")


def zmq_events_endpoint(text: str) -> str:
    """The events socket may face the network (a reader on the PBX host): any tcp:// host here;
    config.py refuses a non-loopback one unless [zmq] curve is on."""
    value = str(text).strip()
    if value.startswith("tcp://") and value[len("tcp://"):].rpartition(":")[0]:
        return value
    return zmq_endpoint(value)


def is_loopback_endpoint(endpoint: str) -> bool:
    """ipc:// or tcp:// on 127.0.0.1, localhost or [::1]."""
    if endpoint.startswith("ipc://"):
        return True
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0]
    return host in {"127.0.0.1", "localhost", "[::1]"}


HOST_ROLES = ("all", "central", "reader")


def host_role(text: str) -> str:
    value = str(text).strip().lower()
    if value not in HOST_ROLES:
        raise ValueError(f"{text!r} is not a host role (all, central, reader)")
    return value


def loopback_host(text: str) -> str:
    value = str(text).strip()
    if value not in {"127.0.0.1", "localhost", "::1"}:
        raise ValueError(f"{text!r} is not a loopback address (127.0.0.1, ::1)")
    return value


_SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


def server_name(text: str) -> str:
    """An Asterisk's name in events, logs, arictl and the database: a word, no spaces."""
    value = str(text).strip()
    if not _SERVER_NAME.fullmatch(value):
        raise ValueError(f"{text!r} is not a server name (letters, digits, '-', '_'; 32 at most)")
    return value


def server_names(text: str) -> tuple[str, ...]:
    """`pbx2, pbx3`: server names, comma-separated; empty: none named."""
    return tuple(server_name(part) for part in str(text).split(",") if part.strip())


def text(value: str) -> str:
    return str(value).strip()


def path(value: str) -> str:
    return str(value).strip()


class Bounded:
    """A converter whose result must lie in [low, high] (written as an operator writes them,
    "1s", "1h", "8"): the file, the environment and the console's `set` all go through it, so a
    value that would spin a thread 1,000 times a second or turn a timer off is refused alike."""

    def __init__(self, convert, low: str, high: str) -> None:
        self.convert = convert
        self.low_text, self.high_text = low, high
        self.low, self.high = convert(low), convert(high)
        self.__name__ = getattr(convert, "__name__", "bounded")

    def __call__(self, text):
        value = self.convert(text)
        if not self.low <= value <= self.high:
            raise ValueError(f"{text!r} is out of bounds: between {self.low_text} and {self.high_text}")
        return value

    def describe(self) -> str:
        return f"{self.low_text} to {self.high_text}"


def choice(*allowed: int):
    """An integer from a fixed list (MP3 bitrates)."""
    def convert(text: str | int) -> int:
        value = integer(text)
        if value not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(map(str, allowed))}")
        return value
    convert.describe = lambda: "one of " + ", ".join(map(str, allowed))  # type: ignore[attr-defined]
    return convert


# The bitrates an MPEG-1/2 layer III encoder accepts (lame at 8 kHz mono: 8-160 are useful).
MP3_BITRATES = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
