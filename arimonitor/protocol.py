"""Every ZeroMQ message that crosses a process boundary is built and read here.

Sockets (addresses come from [zmq] in the config; docs/PROTOCOL.md has the full table):
  events   reader PUSH (connect)       -> engine PULL (bind)
  control  arictl/others REQ (connect) -> engine ROUTER (bind)
  publish  engine PUB (bind)           -> arictl watch, clicktocall SUB (connect)
  jobs     engine PUSH (bind)          -> transcoder PULL (connect)
  results  transcoder PUSH (connect)   -> engine PULL (bind)

All JSON is UTF-8. ARI frames travel untouched as the last part of an `ari` message.
"""

from __future__ import annotations

import json
import time
from typing import Any

# ---- events socket (reader -> engine) -------------------------------------------------------
# [KIND_ARI, header-json, frame-bytes]: header = {server, epoch, seq, t}
# [KIND_ARI_BATCH, header-json, frame1, frame2, ...]: header = {server, epoch, seq, n, t}
#     n >= 1 consecutive frames of one connection: frame i (from 0) has sequence number seq + i;
#     t is the reader's receive time of the first frame, shared by all (the others were already
#     waiting in the socket when it was read). Frames are the WebSocket bytes, untouched.
# [KIND_LINK, json]: {server, epoch, state: connected|disconnected, reason, t}
# [KIND_READER_STATS, json]: the reader's counters, sent every few seconds
KIND_ARI = b"ari"
KIND_ARI_BATCH = b"ari-batch"
KIND_LINK = b"link"
KIND_READER_STATS = b"reader-stats"

LINK_CONNECTED = "connected"
LINK_DISCONNECTED = "disconnected"


def ari_header_prefix(server: str) -> bytes:
    """The constant start of a connection's headers (the reader keeps one per server)."""
    return b'{"server":' + dumps(server) + b',"epoch":'


def ari_header(prefix: bytes, epoch: int, seq: int, received: float, n: int | None = None) -> bytes:
    """The JSON header of an `ari` message (n None) or an `ari-batch` of n frames, built with
    %-formatting rather than json.dumps: the reader builds one per message on its hot path."""
    if n is None:
        return b'%s%d,"seq":%d,"t":%r}' % (prefix, epoch, seq, received)
    return b'%s%d,"seq":%d,"n":%d,"t":%r}' % (prefix, epoch, seq, n, received)


def ari_frame(server: str, epoch: int, seq: int, frame: bytes, received: float | None = None) -> list[bytes]:
    t = received if received is not None else time.time()
    return [KIND_ARI, ari_header(ari_header_prefix(server), epoch, seq, t), frame]


def ari_batch(server: str, epoch: int, first_seq: int, frames: list[bytes],
              received: float | None = None) -> list[bytes]:
    t = received if received is not None else time.time()
    return [KIND_ARI_BATCH, ari_header(ari_header_prefix(server), epoch, first_seq, t, len(frames)),
            *frames]


def ari_frames(parts: list[bytes]) -> list[tuple[dict, bytes]]:
    """The frames of an `ari` or `ari-batch` message as (header of that frame, frame) pairs.

    For readers and tests; the engine's intake reads the same layout without building these.
    Raises ValueError on anything else.
    """
    if parts[0] == KIND_ARI and len(parts) == 3:
        return [(loads(parts[1]), parts[2])]
    if parts[0] == KIND_ARI_BATCH and len(parts) >= 3:
        header = loads(parts[1])
        if header.get("n") != len(parts) - 2:
            raise ValueError(f"batch header says n={header.get('n')}, message has {len(parts) - 2} frames")
        return [({**header, "seq": header["seq"] + i, "n": 1}, frame)
                for i, frame in enumerate(parts[2:])]
    raise ValueError(f"not an ARI frame message: {parts[0]!r} with {len(parts)} parts")


def link_notice(server: str, epoch: int, state: str, reason: str = "") -> list[bytes]:
    return [KIND_LINK, dumps({"server": server, "epoch": epoch, "state": state, "reason": reason,
                              "t": time.time()})]


# ---- control socket (REQ -> ROUTER) ---------------------------------------------------------
# request: {"id": str, "cmd": str, "args": [str...], "opts": {name: value}, "api": int}
# reply:   {"id", "status": "ok"|"error", "code": int, "reason": str, "data": any, "text": str}

STATUS_OK = "ok"
STATUS_ERROR = "error"

# Error codes: one table, shared by arictl, the manager port and the clicktocall consumer.
E_OK = 0
E_UNKNOWN_COMMAND = 1
E_BAD_ARGUMENTS = 2
E_NOT_FOUND = 3
E_NOT_SETTABLE = 4
E_BAD_VALUE = 5
E_BUSY = 6
E_ARI_UNAVAILABLE = 7
E_MALFORMED = 8
E_API_VERSION = 9
E_ARI_AUTH = 10
E_FORBIDDEN = 11
E_INTERNAL = 99

ERROR_NAMES = {
    E_OK: "ok",
    E_UNKNOWN_COMMAND: "unknown command",
    E_BAD_ARGUMENTS: "bad arguments",
    E_NOT_FOUND: "not found",
    E_NOT_SETTABLE: "not settable",
    E_BAD_VALUE: "bad value",
    E_BUSY: "busy",
    E_ARI_UNAVAILABLE: "Asterisk unavailable",
    E_MALFORMED: "malformed request",
    E_API_VERSION: "API version mismatch",
    E_ARI_AUTH: "Asterisk refused our credentials",
    E_FORBIDDEN: "not allowed on this port",
    E_INTERNAL: "internal error",
}


def ari_error_code(exc: Exception) -> int:
    # by name: arictl imports this module and must not pay for importing requests
    """E_ARI_AUTH for a refused user/password (fix the config), else E_ARI_UNAVAILABLE."""
    return E_ARI_AUTH if type(exc).__name__ == "AriAuthError" else E_ARI_UNAVAILABLE


# Who asks: the manager port marks its requests, because anyone on the machine can reach
# 127.0.0.1:1101 while the control socket is the owner's alone (0600 in a 0700 folder).
VIA_MANAGER = "manager"


def request(req_id: str, cmd: str, args: list[str] | None = None, opts: dict | None = None,
            api: int | None = None, via: str | None = None) -> bytes:
    from arimonitor import API_VERSION

    body = {"id": req_id, "cmd": cmd, "args": args or [], "opts": opts or {},
            "api": API_VERSION if api is None else api}
    if via:
        body["via"] = via
    return dumps(body)


def ok(req_id: str | None, data: Any = None, text: str = "", problems: list[str] | None = None) -> dict:
    """A command that reports health (`status`) adds `problems`: the answer is ok, and the
    list says what is not healthy (empty = healthy); arictl exits 1 when it is not empty."""
    reply = {"id": req_id, "status": STATUS_OK, "code": E_OK, "reason": "", "data": data, "text": text}
    if problems is not None:
        reply["problems"] = problems
    return reply


def error(req_id: str | None, code: int, reason: str, data: Any = None) -> dict:
    return {"id": req_id, "status": STATUS_ERROR, "code": code, "reason": reason, "data": data,
            "text": f"error: {reason}"}


# ---- publish socket (engine PUB) ------------------------------------------------------------
# [topic, json]. SUB filters by prefix, so "call" receives "call.ended" too.
TOPIC_CALL = "call"            # call.ringing call.up call.ended
TOPIC_ENDPOINT = "endpoint"    # endpoint.online endpoint.offline endpoint.address
TOPIC_RECORDING = "recording"  # recording.started recording.finished recording.failed recording.mp3
TOPIC_C2C = "c2c"              # c2c.accepted ... c2c.final
TOPIC_WARNING = "warning"      # warning.rest_stall warning.resync ...
TOPIC_LINK = "link"            # link.connected link.disconnected link.resynced
# progress.<command> {label, stage, done, total, text}: a slow console command's progress
TOPIC_PROGRESS = "progress"
# control.level {"process": name|"all", "level": "DEBUG"|"INFO"|...}: every process listens
TOPIC_CONTROL = "control"
TOPICS = (TOPIC_CALL, TOPIC_ENDPOINT, TOPIC_RECORDING, TOPIC_C2C, TOPIC_WARNING, TOPIC_LINK,
          TOPIC_PROGRESS, TOPIC_CONTROL)
# What the engine concluded, the topics the events bus carries (and the engine keeps for its
# catch-up, `_publications`). Not `progress.*` (a console command's progress bar) nor
# `control.*` (log levels between our own processes).
BUS_TOPICS = (TOPIC_CALL, TOPIC_ENDPOINT, TOPIC_RECORDING, TOPIC_C2C, TOPIC_LINK, TOPIC_WARNING)
# Whole topics that code subscribes to or publishes by name (the rest are family.<what>).
TOPIC_CALL_UP = f"{TOPIC_CALL}.up"
TOPIC_CALL_ENDED = f"{TOPIC_CALL}.ended"
TOPIC_C2C_FINAL = f"{TOPIC_C2C}.final"
TOPIC_LINK_CONNECTED = f"{TOPIC_LINK}.connected"
TOPIC_LINK_DISCONNECTED = f"{TOPIC_LINK}.disconnected"
TOPIC_LINK_RESYNCED = f"{TOPIC_LINK}.resynced"
TOPIC_WARNING_RESYNC = f"{TOPIC_WARNING}.resync"
# The `type` of a click-to-call outcome message (AMQP reply and results exchange).
C2C_OUTCOME_TYPE = "c2c.outcome"


def level_change(process: str, level: str) -> list[bytes]:
    return publication(f"{TOPIC_CONTROL}.level", {"process": process, "level": level})


def publication(topic: str, body: dict | bytes, stamp: str | None = None) -> list[bytes]:
    """[topic, body], or [topic, stamp, body] from the engine's notifier: `stamp` is
    `<run>.<seq>`, seq counting every publication of that engine run from 1, so a subscriber
    that must not miss one (the bus process) sees a PUB/SUB drop as a gap. Readers take the
    topic from the first frame and the body from the last, so both shapes read the same."""
    data = body if isinstance(body, bytes) else dumps(body)  # bytes: encoded already (jsonfast)
    if stamp is None:
        return [topic.encode(), data]
    return [topic.encode(), stamp.encode(), data]


def publication_stamp(parts: list[bytes]) -> tuple[str, int] | None:
    """(run, seq) of a stamped publication; None when it carries no stamp (or a bad one)."""
    if len(parts) != 3:
        return None
    run, _, seq = parts[1].decode("ascii", "replace").rpartition(".")
    return (run, int(seq)) if run and seq.isdigit() else None


# ---- jobs/results sockets (engine <-> transcoder) -------------------------------------------
# job:     [b"job", json {job_id, attempt, wav, mp3, mp3_root, bitrate, sample_rate|null,
#                         tags: {client, call_id, date, origin, destination}, delete_wav}]
# started: [b"started", json {job_id, attempt, worker}]  a worker took the job (so the engine
#          can resend at once if that worker goes silent, instead of waiting for the deadline)
# result:  [b"result", json {job_id, attempt, worker, ok, code, reason, retry, mp3, duration,
#                            wav_duration, seconds, encoder, wav_deleted, notes: [str]}]
#          code: "" when ok, else corrupt_wav|missing_wav|missing_folder|disk_full|write_failed|
#          encoder_failed|verify_failed|abandoned|bad_job|internal; retry: may a later try help
# hello:   [b"hello", json {worker, pid, busy: job_id|null, done, failed, encoders: [names],
#                           speed: {encoder: realtime factor}, interval}]
#          sent by a worker at start and every `interval` seconds, even while it converts
KIND_JOB = b"job"
KIND_STARTED = b"started"
KIND_RESULT = b"result"
KIND_HELLO = b"hello"


def transcode_message(kind: bytes, body: dict) -> list[bytes]:
    """A jobs/results socket message: [kind, json]."""
    return [kind, dumps(body)]


# The json module here: arictl imports this file and answers within 2x a bare interpreter;
# orjson's import alone costs ~14 ms. The hot paths (every ARI event, every publication, the
# bus) use arimonitor.jsonfast, the same output through orjson.
def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def loads(data: bytes | str) -> Any:
    return json.loads(data)
