"""The bus message: routing key `<kind>.<event>.<server>.<client>` and a versioned JSON body.

docs/PROTOCOL.md ("RabbitMQ: events bus") is the contract; this is its one implementation.
"""

from __future__ import annotations

import re
from typing import Any

from arimonitor import jsonfast, protocol

BODY_VERSION = 1
NO_CLIENT = "-"  # the client word of a routing key when the event has no client

BUS_TOPICS = protocol.BUS_TOPICS  # what goes on the bus: what the engine concluded

# A routing-key word must not hold the topic separator or the binding wildcards.
_NOT_A_WORD = re.compile(r"[.*#\s]")


def word(value: Any) -> str:
    """One routing-key word: `.`, `*`, `#` and blanks become `_`; empty becomes `-`."""
    text = "" if value is None else str(value)
    return _NOT_A_WORD.sub("_", text) or NO_CLIENT


def routing_key(topic: str, server: str, client: Any) -> str:
    kind, _, event = topic.partition(".")
    return f"{word(kind)}.{word(event)}.{word(server)}.{word(client)}"


def envelope(topic: str, body: dict[str, Any], *, server: str, seq: int, run: str,
             source: str) -> dict[str, Any]:
    """The bus body: who/what/when around the engine's publication, `data` untouched (the same
    body `arictl watch --json` shows for that topic). `id` is the engine's stamp of it
    (`<engine run>.<seq>`), the same however often the bus process sends it: the message_id."""
    kind, _, event = topic.partition(".")
    client = body.get("client")
    return {"version": BODY_VERSION, "kind": kind, "event": event, "topic": topic,
            "server": server, "client": None if client in (None, "") else str(client),
            "run": run, "seq": seq, "id": source, "t": body.get("t"), "data": body}


def encode(topic: str, body: dict[str, Any], *, server: str, seq: int, run: str,
           source: str) -> tuple[str, bytes]:
    """(routing key, JSON bytes) of one publication."""
    message = envelope(topic, body, server=server, seq=seq, run=run, source=source)
    return routing_key(topic, server, message["client"]), jsonfast.dumps(message)
