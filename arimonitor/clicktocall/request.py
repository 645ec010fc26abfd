"""A click-to-call message -> a typed ClickToCallRequest, or a Refusal saying why not.

Pure functions: no I/O, no clock. Two steps, so the format check needs no tables:
  parse_request(body, reply_to, correlation_id, limits) -> ClickToCallRequest | Refusal
  check_tables(request, clients, endpoints)           -> Refusal | None

Message (JSON object, UTF-8):
  request_id   str, [A-Za-z0-9][A-Za-z0-9_.-]{0,63}; unique per request (a UUID is ideal)
  client       str|int, a section of __CLIENTES__.DEF
  origin       str|int, an endpoint id of that client (called first)
  destination  str|int, an endpoint id, or a phone number (+ and 3-20 digits) dialled
               through clicktocall.trunk_dial
  caller_id    str, optional, shown on the origin phone ("Name <number>")
  timeout      number, optional, ring time in seconds for each leg, 1..clicktocall.max_timeout
  record       bool, optional; absent = the client's gravar= policy
  variables    {str: str|number}, optional, channel variables set on both legs
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from arimonitor.clicktocall import reasons

MAX_BODY = 16 * 1024
MAX_VARIABLES = 32
# Every pattern here guards input: used with fullmatch (a `$` would let a trailing "\n" in).
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ENDPOINT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
_PHONE = re.compile(r"\+?[0-9]{3,20}")
_DESTINATION = re.compile(f"(?:{_ENDPOINT_ID.pattern})|(?:{_PHONE.pattern})")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MAX_VAR_VALUE = 512
_MAX_CALLER_ID = 80
# Names our own flow sets on the channels; a request must not overwrite them.
RESERVED_PREFIX = "C2C_"

DEST_ENDPOINT = "endpoint"
DEST_NUMBER = "number"


@dataclass(frozen=True)
class Refusal:
    reason: str  # a code from reasons
    text: str    # operator text, safe to log and to send back (never echoes secrets)

    @classmethod
    def of(cls, reason: str, detail: str = "") -> Refusal:
        base = reasons.describe(reason)
        return cls(reason, f"{base}: {detail}" if detail else base)


@dataclass(frozen=True)
class Limits:
    default_timeout: float = 30.0
    max_timeout: float = 120.0
    max_body: int = MAX_BODY


@dataclass(frozen=True)
class ClickToCallRequest:
    request_id: str
    client: str
    origin: str
    destination: str
    timeout: float
    caller_id: str | None = None
    record: bool | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    reply_to: str | None = None
    correlation_id: str | None = None
    # when the publisher stamped it (AMQP timestamp, epoch seconds); None if unstamped
    queued_at: float | None = None
    # the broker's redelivered flag: this very message may have been judged before a crash
    redelivered: bool = False
    # the AMQP user_id (RabbitMQ checked it is the publishing connection's user); None if unset
    publisher: str | None = None

    @property
    def origin_channel_id(self) -> str:
        return origin_channel_id(self.request_id)

    @property
    def destination_channel_id(self) -> str:
        return destination_channel_id(self.request_id)


# Channel ids carry the request id itself (not a hash), so the engine can tell which request
# every early event (ringing, busy...) belongs to before the channel enters Stasis.
def origin_channel_id(request_id: str) -> str:
    return f"c2c-{request_id}-a"


def destination_channel_id(request_id: str) -> str:
    return f"c2c-{request_id}-b"


_CHANNEL = re.compile(r"c2c-(?P<rid>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})-(?P<leg>[ab])")


def parse_channel_id(channel_id: str) -> tuple[str, str] | None:
    """(request_id, "a"|"b") of a click-to-call leg, or None for any other channel."""
    match = _CHANNEL.fullmatch(channel_id or "")
    return (match["rid"], match["leg"]) if match else None


def parse_request(body: bytes, reply_to: str | None = None, correlation_id: str | None = None,
                  limits: Limits = Limits()) -> ClickToCallRequest | Refusal:
    if len(body) > limits.max_body:
        return Refusal.of(reasons.TOO_LARGE, f"{len(body)} bytes (limit {limits.max_body})")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return Refusal.of(reasons.MALFORMED, f"not JSON ({type(exc).__name__})")
    if not isinstance(data, dict):
        return Refusal.of(reasons.MALFORMED, "not a JSON object")
    try:
        return _build(data, reply_to, correlation_id, limits)
    except _Refused as exc:
        return exc.refusal


class _Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.refusal = Refusal.of(reason, detail)


def _build(data: dict[str, Any], reply_to: str | None, correlation_id: str | None,
           limits: Limits) -> ClickToCallRequest:
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not _SAFE_ID.fullmatch(request_id):
        raise _Refused(reasons.BAD_REQUEST_ID, "a string of 1-64 letters, digits, '_', '.', '-'")
    client = _ident(data, "client")
    origin = _ident(data, "origin")
    destination = _ident(data, "destination", reasons.BAD_DESTINATION, _DESTINATION)
    return ClickToCallRequest(
        request_id=request_id, client=client, origin=origin, destination=destination,
        timeout=_timeout(data.get("timeout"), limits), caller_id=_caller_id(data.get("caller_id")),
        record=_record(data.get("record")), variables=_variables(data.get("variables")),
        reply_to=reply_to or None, correlation_id=correlation_id or None,
    )


def _ident(data: dict[str, Any], key: str, reason: str = reasons.MALFORMED,
           pattern: re.Pattern[str] = _ENDPOINT_ID) -> str:
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)  # web systems often send numeric ids as numbers
    if not isinstance(value, str) or not value.strip():
        raise _Refused(reason, f"'{key}' must be a non-empty string")
    value = value.strip()
    if not pattern.fullmatch(value):
        raise _Refused(reason, f"'{key}' is not an endpoint id" + (" nor a phone number" if pattern is _DESTINATION else ""))
    return value


def _timeout(value: Any, limits: Limits) -> float:
    if value is None:
        return limits.default_timeout
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Refused(reasons.BAD_TIMEOUT, "'timeout' must be a number of seconds")
    # Asterisk takes any timeout (even "abc"), so the bounds are ours to keep.
    if not 1 <= value <= limits.max_timeout:
        raise _Refused(reasons.BAD_TIMEOUT, f"between 1 and {limits.max_timeout:g} seconds")
    return float(value)


def _caller_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_CALLER_ID or not value.isprintable():
        raise _Refused(reasons.BAD_CALLER_ID, f"printable text up to {_MAX_CALLER_ID} characters")
    return value.strip() or None


def _record(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _Refused(reasons.MALFORMED, "'record' must be true or false")


def _variables(value: Any) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_VARIABLES:
        raise _Refused(reasons.BAD_VARIABLES, f"an object of up to {MAX_VARIABLES} entries")
    out: dict[str, str] = {}
    for name, raw in value.items():
        if not _VAR_NAME.fullmatch(name) or name.upper().startswith(RESERVED_PREFIX):
            raise _Refused(reasons.BAD_VARIABLES, f"bad variable name {name[:64]!r}")
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise _Refused(reasons.BAD_VARIABLES, f"variable {name} must be text or a number")
        text = str(raw)
        if len(text) > _MAX_VAR_VALUE or not text.isprintable():
            raise _Refused(reasons.BAD_VARIABLES, f"variable {name} is too long or not printable")
        out[name] = text
    return out


class _Client(Protocol):
    active: bool
    max_calls: int | None


class _Endpoint(Protocol):
    client: str


def check_tables(request: ClickToCallRequest, clients: Mapping[str, _Client],
                 endpoints: Mapping[str, _Endpoint]) -> Refusal | None:
    """The checks that need the v2.7 tables (known and active client, origin of the client)."""
    client = clients.get(request.client)
    if client is None:
        return Refusal.of(reasons.UNKNOWN_CLIENT, request.client)
    if not client.active:
        return Refusal.of(reasons.INACTIVE_CLIENT, request.client)
    origin = endpoints.get(request.origin)
    if origin is None:
        return Refusal.of(reasons.UNKNOWN_ORIGIN, request.origin)
    if origin.client != request.client:
        return Refusal.of(reasons.ORIGIN_NOT_OF_CLIENT, f"{request.origin} is not of {request.client}")
    if request.destination not in endpoints and not _PHONE.fullmatch(request.destination):
        return Refusal.of(reasons.BAD_DESTINATION, "not a known endpoint nor a phone number")
    return None


def destination_kind(request: ClickToCallRequest, endpoints: Mapping[str, Any]) -> str:
    """A known endpoint id wins over a number with the same digits (endpoint ids are digits)."""
    return DEST_ENDPOINT if request.destination in endpoints else DEST_NUMBER


def should_record(request: ClickToCallRequest, client: _Client | None, default: bool) -> bool:
    """The request decides if it says; else the client's gravar=; else the config default."""
    if request.record is not None:
        return request.record
    record = getattr(client, "record", None)
    return default if record is None else bool(record)
