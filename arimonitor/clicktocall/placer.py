"""Place one validated request: tables, ledger, origin presence, the originate, its verdict.

Runs in the consumer's worker threads (blocking HTTP); returns a Decision that the connection
thread turns into acks and publications. Which side of each ARI answer is which:

  200                        -> ACCEPTED   (ack)
  409 channel id exists      -> DUPLICATE  (ack; the first delivery placed the call)
  500 "Allocation failed"    -> REFUSED origin_unreachable (dead letter + reply; no event will come)
  other 5xx, no answer       -> RETRY      (retry queue with delay, then ack)
  401/403                    -> RETRY      (our ARI password is wrong: an operator fixes it)
  other 4xx                  -> REFUSED asterisk_rejected

Several Asterisk servers ([ari] and each [ari:NAME], config order): the origin is looked up on
every one (`GET /endpoints/PJSIP/{origin}`) and the call is placed on the server where it is
online, with that server's REST and `app`; online on none -> origin_offline; online on two ->
the first, warned once per origin and counted (`origin_on_two_servers`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from arimonitor.ari.rest import AriHttpError, AriUnavailable
from arimonitor.clicktocall import ledger as L
from arimonitor.clicktocall import reasons
from arimonitor.clicktocall.authorize import Policy
from arimonitor.clicktocall.request import (
    ClickToCallRequest,
    Refusal,
    check_tables,
    destination_kind,
    should_record,
)

ACCEPTED, DUPLICATE, REFUSED, RETRY = "accepted", "duplicate", "refused", "retry"
# The ledger cannot be written (a full disk): not placed, not judged; the message goes back to
# the queue a little later (nack), without counting as an attempt.
DEFER = "defer"
APP_ARGS_TAG = "click2call"
ONLINE_CACHE = 1.0  # seconds an "online" answer is trusted (an originate 500 catches the rest)
WARNED_MAX = 10000  # origins warned about (registered on two servers) kept, then forgotten


class Ari(Protocol):
    """AriRest or LeanAri: raise AriHttpError / AriUnavailable."""

    def get(self, path: str, params: dict | None = None) -> Any: ...
    def post(self, path: str, params: dict | None = None, body: Any = None) -> Any: ...


@dataclass(frozen=True)
class AriServer:
    """One Asterisk the consumer may originate on: its name (`server_id`), its Stasis app and
    a maker of its REST client (one per worker thread)."""

    name: str
    app: str
    rest_factory: Callable[[], Ari]


@dataclass(frozen=True)
class Decision:
    kind: str
    request: ClickToCallRequest
    refusal: Refusal | None = None
    error: str = ""          # why a RETRY
    channel_id: str = ""
    server: str = ""         # where the call was placed (ACCEPTED, DUPLICATE)


@dataclass(frozen=True)
class PlacerSettings:
    app: str
    default_record: bool = False
    max_wait: float = 0.0  # seconds a stamped request may wait in the queue; 0 = no limit
    # who may ask what (authorize.py); process.py passes the configured one
    policy: Policy = field(default_factory=Policy.open)


def app_args(req: ClickToCallRequest, kind: str, record: bool) -> str:
    """What the engine's flow reads at StasisStart (docs/PROTOCOL.md, "originate")."""
    return ",".join((APP_ARGS_TAG, req.request_id, "A", req.client, kind, req.destination,
                     "1" if record else "0", str(int(req.timeout))))


class Placer:
    """`servers`: the Asterisks in config order, or one REST maker (a single server, whose
    app is `settings.app`)."""

    def __init__(self, settings: PlacerSettings, tables: Callable[[], Any], ledger: L.Ledger,
                 servers: Sequence[AriServer] | Callable[[], Ari], log: logging.Logger,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._tables = tables  # -> object with .clients and .endpoints (v27 Tables)
        self._ledger = ledger
        self._servers = (list(servers) if isinstance(servers, Sequence)
                         else [AriServer("", settings.app, servers)])
        self._local = threading.local()  # one REST client per server and worker thread
        self._log = log
        self._clock = clock
        self._online: dict[str, tuple[float, AriServer]] = {}
        self._warned_two: set[str] = set()
        self.counters = {"origin_on_two_servers": 0}

    def _rest(self, server: AriServer) -> Ari:
        rests = getattr(self._local, "rests", None)
        if rests is None:
            rests = self._local.rests = {}
        rest = rests.get(server.name)
        if rest is None:
            rest = rests[server.name] = server.rest_factory()
        return rest

    def place(self, req: ClickToCallRequest) -> Decision:
        tables = self._tables()
        refusal = check_tables(req, tables.clients, tables.endpoints)
        if refusal:
            return Decision(REFUSED, req, refusal)
        client = tables.clients[req.client]
        refusal = self.settings.policy.check(req, req.publisher, client, tables.endpoints)
        if refusal:  # before the ledger: a request nobody may make touches nothing
            return Decision(REFUSED, req, refusal)
        try:
            verdict = self._ledger.reserve(req, client.max_calls, req.redelivered)
        except sqlite3.Error as exc:
            return Decision(DEFER, req, error=f"ledger not writable: {exc}")
        if verdict == L.DUPLICATE:
            return Decision(DUPLICATE, req)
        if verdict == L.FOREIGN:
            return Decision(REFUSED, req, Refusal.of(reasons.DUPLICATE_REQUEST_ID, req.request_id))
        if verdict == L.LIMIT:
            return Decision(REFUSED, req, Refusal.of(
                reasons.CALL_LIMIT, f"{client.max_calls} calls up for client {req.client}"))
        if self.settings.max_wait and req.queued_at is not None:
            waited = time.time() - req.queued_at
            if waited > self.settings.max_wait:
                # Clicked long ago (we were down, the queue backed up): ringing the phone now
                # would surprise its owner. After the ledger check, so a placed call that is
                # redelivered late is still a duplicate, never an expired refusal.
                return Decision(REFUSED, req, Refusal.of(
                    reasons.EXPIRED, f"waited {waited:.0f} s (limit {self.settings.max_wait:.0f} s)"))
        try:
            server, refusal = self._where_online(req.origin)
            if refusal or server is None:
                return Decision(REFUSED, req, refusal)
            return self._originate(req, tables.endpoints, client, server)
        except AriUnavailable as exc:
            self._note(self._ledger.release, req.request_id)
            return Decision(RETRY, req, error=str(exc))

    def _where_online(self, origin: str) -> tuple[AriServer | None, Refusal | None]:
        """The first server (config order) where the origin is online, or why none.
        A server that cannot answer, with the origin online on none of the others: retry
        (it may be registered there)."""
        now = self._clock()
        cached = self._online.get(origin)
        if cached is not None and cached[0] > now:
            return cached[1], None
        online: list[AriServer] = []
        states: list[str] = []
        unavailable: AriUnavailable | None = None
        for server in self._servers:
            try:
                state = self._state_on(server, origin)
            except AriUnavailable as exc:
                unavailable = exc
                continue
            if state == "online":
                online.append(server)
            else:
                states.append(state if len(self._servers) == 1 else f"{server.name}: {state}")
        if online:
            if len(online) > 1:
                self._registered_twice(origin, online)
            self._online[origin] = (now + ONLINE_CACHE, online[0])
            return online[0], None
        if unavailable is not None:
            raise unavailable
        if len(self._servers) == 1:
            text = (f"{origin} is not configured in Asterisk" if states == ["not configured"]
                    else f"{origin} is {states[0]}")
        else:
            text = f"{origin} is online on no server ({', '.join(states)})"
        return None, Refusal.of(reasons.ORIGIN_OFFLINE, text)

    def _state_on(self, server: AriServer, origin: str) -> str:
        """The endpoint's state on one server; "not configured" for a 404."""
        try:
            endpoint = self._rest(server).get(f"/endpoints/PJSIP/{origin}")
        except AriHttpError as exc:
            if exc.status == 404:
                return "not configured"
            raise AriUnavailable(exc.method, exc.path, f"HTTP {exc.status}") from None
        return str((endpoint or {}).get("state", "unknown"))

    def _registered_twice(self, origin: str, online: list[AriServer]) -> None:
        """Counted every time; warned once per origin (the set is bounded)."""
        self.counters["origin_on_two_servers"] += 1
        if origin in self._warned_two:
            return
        if len(self._warned_two) >= WARNED_MAX:
            self._warned_two.clear()
        self._warned_two.add(origin)
        self._log.warning("origin %s is online on %d servers (%s): click-to-call uses %s",
                          origin, len(online), ", ".join(s.name for s in online), online[0].name)

    def _originate(self, req: ClickToCallRequest, endpoints: Mapping[str, Any], client: Any,
                   server: AriServer) -> Decision:
        record = should_record(req, client, self.settings.default_record)
        params = {
            "endpoint": f"PJSIP/{req.origin}", "app": server.app,
            "appArgs": app_args(req, destination_kind(req, endpoints), record),
            "channelId": req.origin_channel_id, "timeout": str(int(req.timeout)),
        }
        if req.caller_id:
            params["callerId"] = req.caller_id
        variables = {**req.variables, "C2C_REQUEST_ID": req.request_id, "C2C_CLIENT": req.client}
        try:
            self._rest(server).post("/channels", params=params, body={"variables": variables})
        except AriHttpError as exc:
            return self._classify(req, exc, server)
        self._note(self._ledger.accepted, req.request_id, server.name)
        return Decision(ACCEPTED, req, channel_id=req.origin_channel_id, server=server.name)

    def _note(self, step: Callable[..., None], request_id: str, *args: str) -> None:
        """A ledger update after the reservation. If the disk is full it stays as reserved
        (still counted; a redelivery resumes it and Asterisk's 409 says it exists): safe."""
        try:
            step(request_id, *args)
        except sqlite3.Error as exc:
            self._log.warning("c2c %s: ledger not updated (%s); it stays reserved", request_id, exc)

    def _classify(self, req: ClickToCallRequest, exc: AriHttpError, server: AriServer) -> Decision:
        body = exc.body if isinstance(exc.body, dict) else {}
        if exc.status == 409:
            # The channel id is ours and derived from the request id: this request's call
            # exists already. Never a second call.
            self._note(self._ledger.accepted, req.request_id, server.name)
            return Decision(DUPLICATE, req, channel_id=req.origin_channel_id, server=server.name)
        if exc.status == 500 and "allocation failed" in str(body.get("error", "")).lower():
            self._online.pop(req.origin, None)
            return Decision(REFUSED, req, Refusal.of(reasons.ORIGIN_UNREACHABLE, req.origin))
        if exc.status >= 500 or exc.status in (401, 403):
            if exc.status in (401, 403):
                self._log.error("ARI refused our credentials (HTTP %d): check [ari] user/password",
                                exc.status)
            self._note(self._ledger.release, req.request_id)
            return Decision(RETRY, req, error=f"HTTP {exc.status}")
        detail = body.get("message") or body.get("error") or f"HTTP {exc.status}"
        return Decision(REFUSED, req, Refusal.of(reasons.ASTERISK_REJECTED, str(detail)[:120]))
