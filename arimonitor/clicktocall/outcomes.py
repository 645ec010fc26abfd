"""The AMQP messages the consumer publishes: outcomes, dead letters, retries.

Outcome body (JSON, content_type application/json; docs/PROTOCOL.md has the table):
  {"type": "c2c.outcome", "version": 1, "request_id", "client", "event", "final",
   "result": refused|failed|completed (final only), "reason", "text",
   "cause", "cause_txt", "duration", "billsec", "origin", "destination", "recording",
   "server", "t"}
`server`: the Asterisk (server_id) the call was placed on; null when it never was.
`duration` and `billsec` are both the talk time: seconds from both legs connected to the end
(0 for a call placed that never connected; null when never placed or unknown).
sent to the request's reply_to with its correlation_id, and to the results exchange with
routing key `c2c.<event>.<client>`: no server word, as bindings like `c2c.final.*` exist and a
fourth word would stop them matching (docs/PROTOCOL.md); the body's `server` says which.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pika

from arimonitor import protocol
from arimonitor.clicktocall import reasons
from arimonitor.clicktocall.request import ClickToCallRequest, Refusal

VERSION = 1
CONTENT_TYPE = "application/json"

# Headers we add (the original message's headers are kept beside them).
H_REASON = "x-c2c-reason"            # a code from reasons
H_REASON_TEXT = "x-c2c-reason-text"
H_REFUSED_AT = "x-c2c-refused-at"    # epoch seconds
H_ATTEMPTS = "x-c2c-attempts"        # retries so far (retry path)
H_LAST_ERROR = "x-c2c-last-error"    # why the last attempt is retried
H_FIRST_TRY = "x-c2c-first-try"      # epoch seconds of the first failed attempt (retry path)
H_REQUEST_ID = "x-c2c-request-id"


def outcome(request_id: str, client: str, event: str, *, result: str | None = None,
            reason: str | None = None, text: str = "", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": protocol.C2C_OUTCOME_TYPE, "version": VERSION, "request_id": request_id, "client": client,
        "event": event, "final": event == reasons.EV_FINAL, "result": result,
        "reason": reason, "text": text or (reasons.describe(reason) if reason else ""),
        "cause": None, "cause_txt": None, "duration": None, "origin": None,
        "destination": None, "recording": None, "server": None, "t": time.time(),
    }
    body.update(fields)
    body.setdefault("billsec", body["duration"])
    return body


def refusal_outcome(request_id: str, client: str, refusal: Refusal,
                    req: ClickToCallRequest | None = None) -> dict[str, Any]:
    # retries_exhausted: dead-lettered like a refusal, but the request itself was fine.
    result = (reasons.RESULT_FAILED if refusal.reason == reasons.RETRIES_EXHAUSTED
              else reasons.RESULT_REFUSED)
    return outcome(request_id, client, reasons.EV_FINAL, result=result,
                   reason=refusal.reason, text=refusal.text,
                   origin=req.origin if req else None,
                   destination=req.destination if req else None)


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def routing_key(body: dict[str, Any]) -> str:
    """`c2c.<event>.<client>`; `unknown` only for a message with no readable client (a refusal)."""
    client = str(body.get("client") or "unknown").replace(".", "_")
    return f"c2c.{body.get('event')}.{client}"


def reply_properties(correlation_id: str | None, request_id: str,
                     reply_to: str | None = None) -> pika.BasicProperties:
    """message_id: `<request_id>.final` on the results exchange; `<request_id>.final.<8 hex>`
    (of reply_to and correlation_id) on a reply, so each request message's reply has its own
    id, and a reply sent again after a crash repeats it (the asker drops the repeat)."""
    message_id = f"{request_id}.final"
    if reply_to:
        digest = hashlib.sha1(f"{reply_to}\n{correlation_id or ''}".encode()).hexdigest()[:8]
        message_id = f"{message_id}.{digest}"
    return pika.BasicProperties(content_type=CONTENT_TYPE, delivery_mode=2,
                                correlation_id=correlation_id, message_id=message_id,
                                headers={H_REQUEST_ID: request_id}, timestamp=int(time.time()))


def dead_letter_properties(original: pika.BasicProperties, refusal: Refusal) -> pika.BasicProperties:
    """The original message's properties plus the reason: the dead letter says why."""
    headers = dict(original.headers or {})
    headers.update({H_REASON: refusal.reason, H_REASON_TEXT: refusal.text,
                    H_REFUSED_AT: int(time.time())})
    return _copy(original, headers)


def retry_state(original: pika.BasicProperties, now: float | None = None) -> tuple[int, float]:
    """(attempts made, counting this one; epoch of the first) from the retry headers."""
    headers = original.headers or {}
    now = time.time() if now is None else now
    try:
        attempts = int(headers.get(H_ATTEMPTS) or 0) + 1
        first = float(headers.get(H_FIRST_TRY) or now)
    except (TypeError, ValueError):
        attempts, first = 1, now
    return attempts, min(first, now)


def retry_properties(original: pika.BasicProperties, error: str,
                     delay_seconds: float) -> tuple[pika.BasicProperties, int]:
    headers = dict(original.headers or {})
    attempts, first = retry_state(original)
    headers.update({H_ATTEMPTS: attempts, H_LAST_ERROR: error[:200], H_FIRST_TRY: int(first)})
    props = _copy(original, headers)
    # The broker drops `expiration` when it dead-letters the message back to the main queue.
    props.expiration = str(max(1, int(delay_seconds * 1000)))
    return props, attempts


def _copy(original: pika.BasicProperties, headers: dict[str, Any]) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=original.content_type, content_encoding=original.content_encoding,
        headers=headers, delivery_mode=2, priority=original.priority,
        correlation_id=original.correlation_id, reply_to=original.reply_to,
        message_id=original.message_id, timestamp=original.timestamp, type=original.type,
        app_id=original.app_id)
