"""JSON shapes exactly as Asterisk 22 sends them (field order included, as in the traces)."""

from __future__ import annotations

import time
from typing import Any

CAUSE_TEXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    32: "Normal Clearing",  # 32 is an AST_CAUSE_* alias Asterisk uses for ARI hangups
    34: "Circuit/channel congestion",
    38: "Network out of order",
    127: "Interworking, unspecified",
}

# DELETE /channels/{id}?reason=... -> cause (res/ari/resource_channels.c)
HANGUP_REASONS = {
    "normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 18,
    "rejected": 21, "unallocated": 1, "normal_unspecified": 31, "number_incomplete": 28,
    "codec_mismatch": 58, "interworking": 127, "failure": 38, "answered_elsewhere": 26,
}


def ari_time(at: float | None = None) -> str:
    """`2026-11-24T21:21:13.798+0000`: Asterisk's millisecond UTC stamp."""
    at = time.time() if at is None else at
    ms = int(at * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{ms:03d}+0000"


def caller_id(name: str = "", number: str = "") -> dict[str, str]:
    return {"name": name, "number": number}


def parse_caller_id(text: str) -> dict[str, str]:
    """`Name <number>` or a bare number, as Asterisk's ast_callerid_parse splits it."""
    text = text.strip()
    if "<" in text and text.endswith(">"):
        name, number = text[:-1].split("<", 1)
        return caller_id(name.strip().strip('"'), number.strip())
    if text.replace("+", "").isdigit():
        return caller_id("", text)
    return caller_id(text, "")


def contact_info(uri: str, status: str, aor: str, roundtrip_usec: int = 0) -> dict[str, str]:
    # roundtrip_usec is a *string* in ARI
    return {"uri": uri, "contact_status": status, "aor": aor, "roundtrip_usec": str(roundtrip_usec)}


def live_recording(name: str, fmt: str, state: str, target_uri: str,
                   duration: int | None = None, cause: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "format": fmt, "state": state, "target_uri": target_uri}
    if duration is not None:
        body["duration"] = duration
    if cause is not None:
        body["cause"] = cause
    return body


def playback_json(pid: str, media_uri: str, target_uri: str, state: str) -> dict[str, str]:
    return {"id": pid, "media_uri": media_uri, "target_uri": target_uri, "language": "en",
            "state": state}


def asterisk_info(entity_id: str, startup: float, reload: float) -> dict[str, Any]:
    return {
        "build": {"os": "Linux", "kernel": "6.1.0-sim", "machine": "x86_64",
                  "options": "OPTIONAL_API", "date": ari_time(startup)[:10], "user": "arimonitor-sim"},
        "system": {"version": "22.10.1", "entity_id": entity_id},
        "config": {"name": "", "default_language": "en", "setid": {"user": "", "group": ""}},
        "status": {"startup_time": ari_time(startup), "last_reload_time": ari_time(reload)},
    }


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """An event without `asterisk_id`/`application`; the hub adds them per connection."""
    body: dict[str, Any] = {"type": kind, "timestamp": ari_time()}
    body.update(fields)
    return body


def error(message: str) -> dict[str, str]:
    return {"message": message}


def http_error_page(status: int, title: str) -> str:
    """The HTML page Asterisk's HTTP server (main/http.c ast_http_error) sends for its own
    errors, such as a 503 while it cannot serve ARI."""
    return ("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\r\n"
            f"<html><head>\r\n<title>{status} {title}</title>\r\n</head><body>\r\n"
            f"<h1>{title}</h1>\r\n<p>{title}</p>\r\n<hr />\r\n"
            "<address>Asterisk Server</address>\r\n</body></html>\r\n")
