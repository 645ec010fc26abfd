"""`arictl watch [TOPIC...]`: one readable line per engine event until Ctrl-C.

SUB to [zmq] publish. A quiet engine is not a dead one, so silence is never an error; the only
liveness check is one `version` round trip at start, which prints a notice when it fails.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from arimonitor import protocol

# Key fields per topic family, in print order; the first key found of each group is used.
# The first name of each group is what the engine publishes (engine/outputs.py: Call.view(),
# Endpoint.view(), the recording body; transcode/jobs.py: recording.mp3*; clicktocall/flow.py:
# the c2c outcome); the alternatives keep older or foreign shapes readable.
_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    protocol.TOPIC_CALL: (("client",), ("origin", "caller", "from", "endpoint"), ("->",),
                          ("destination", "callee", "to", "number"), ("duration",),
                          ("cause_txt", "cause", "reason")),
    protocol.TOPIC_ENDPOINT: (("client",), ("id", "endpoint", "resource"), ("state",), ("ip", "address"),
                              ("reason",)),
    protocol.TOPIC_RECORDING: (("client",), ("endpoint",), ("call_id", "call"), ("mp3", "file", "wav", "name"),
                               ("duration",), ("cause", "reason")),
    protocol.TOPIC_C2C: (("client",), ("origin", "caller", "from"),
                         ("->",), ("destination", "callee", "to", "number"), ("result", "outcome", "state"),
                         ("reason",), ("duration",)),
    protocol.TOPIC_WARNING: (("message", "text", "reason"),),
    protocol.TOPIC_LINK: (("server",), ("state",), ("reason",)),
}
_SKIP = {"t", "time", "ts", "topic", "event"}
# Fields of the engine's bodies that only add noise to a one-line view (still in --json).
_HIDE: dict[str, set[str]] = {
    protocol.TOPIC_CALL: {"server", "state", "created", "answered", "ended", "channels",
                          "recording_state", "adopted"},
    protocol.TOPIC_ENDPOINT: {"technology", "guid", "in_files", "contact_uri", "address_at",
                              "last_change", "roundtrip_usec", "port"},
    protocol.TOPIC_RECORDING: {"format", "target_uri"},
    protocol.TOPIC_C2C: {"type", "version", "final", "text", "cause_txt"},
    protocol.TOPIC_LINK: {"since"},
}
# Renamed in key=value extras, so the line reads in the operator's words.
_RENAME = {"id": "call", "hangup_cause": "cause", "end_reason": "reason", "job_id": "job",
           "request_id": "request"}


def _value(value: Any, key: str, body: dict) -> str:
    if key == "duration" and isinstance(value, (int, float)):
        from arimonitor.commands.render import duration

        return duration(value)
    if key == "ip" and body.get("port"):
        return f"{value}:{body['port']}"
    return str(value)


def summarise(topic: str, body: Any) -> str:
    """`call.up 101 1013010 -> 1123000` and the like; other fields are shown as key=value."""
    if not isinstance(body, dict):
        return f"{topic} {body}"
    family = topic.split(".", 1)[0]
    words: list[str] = [topic]
    used: set[str] = set(_SKIP) | _HIDE.get(family, set())
    if family == protocol.TOPIC_CALL and not topic.endswith(".ended"):
        # time since the call was created is not a call length; a Dial status is only final
        # once the call ends (call.up with dial_status=RINGING said the opposite of the truth)
        used |= {"duration", "billsec", "dial_status"}
    for group in _FIELDS.get(family, ()):
        if group == ("->",):
            words.append("->")
            continue
        for key in group:
            if key not in used and body.get(key) not in (None, ""):
                words.append(_value(body[key], key, body))
                used.add(key)
                break
    if words[-1] == "->":
        words.pop()
    for key, value in body.items():
        if key in used or value in ("", None) or value is False:
            continue
        if isinstance(value, (str, int, float, bool)):
            words.append(f"{_RENAME.get(key, key)}={value}")
    return " ".join(words).replace(" -> ->", " ->")


def format_line(topic: str, body: Any, received: float) -> str:
    when = body.get("t") if isinstance(body, dict) and isinstance(body.get("t"), (int, float)) else received
    return f"{time.strftime('%H:%M:%S', time.localtime(when))} {summarise(topic, body)}"


def run_watch(found: Any, topics: list[str], as_json: bool) -> int:
    from arimonitor.console.client import Session, unreachable_message
    from arimonitor.console.zmtp import Subscription, Unreachable

    for topic in topics:
        if topic.split(".", 1)[0] not in protocol.TOPICS:
            sys.stderr.write(f"arictl watch: unknown topic {topic!r} (topics: {' '.join(protocol.TOPICS)})\n")
            return 2
    session = Session(found.control, min(found.timeout, 2.0))
    try:
        session.raw("version")
    except Unreachable as exc:
        sys.stderr.write(unreachable_message(found.control, str(exc), found.config_path)
                         + "\narictl watch: waiting for events anyway (Ctrl-C to stop)\n")
    finally:
        session.close()

    sub = None
    try:  # Ctrl-C while pyzmq is still loading is a normal stop too
        sub = Subscription(found.publish, topics or [""])
        if not as_json:
            sys.stderr.write(f"watching {' '.join(topics) or 'all events'} on {found.publish} (Ctrl-C to stop)\n")
        while True:
            parts = sub.receive(0.5)
            if parts is None:
                continue
            topic = parts[0].decode("utf-8", "replace")
            try:
                body = json.loads(parts[-1]) if len(parts) > 1 else None
            except ValueError:
                body = parts[-1].decode("utf-8", "replace")
            if as_json:
                line = json.dumps({"topic": topic, "event": body}, ensure_ascii=False)
            else:
                line = format_line(topic, body, time.time())
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        if sub is not None:
            sub.close()
