"""The engine's in-memory tables: endpoints, channels, bridges, calls, remote IPs, counters.

Only the engine's loop thread touches these. Records use slots: 10,000 endpoints and 2,000
calls must fit in well under 150 MB. Views (`view()`) are plain dicts for the console and PUB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from arimonitor.engine import states as S


@dataclass(slots=True)
class Endpoint:
    id: str                      # the ARI resource ("1003000"); "TECH/resource" if not PJSIP
    technology: str = "PJSIP"
    client: str = ""
    type: str = ""
    guid: str = ""
    in_files: bool = False       # listed in endpoints_pjsip.def; False = only ARI knows it
    state: str = S.ENDPOINT_UNKNOWN
    peer_status: str = ""
    contact_uri: str = ""
    contact_status: str = ""
    ip: str | None = None
    port: int | None = None
    roundtrip_usec: int | None = None
    address_source: str = "unknown"  # event | ami | cli | unknown
    address_at: float = 0.0
    last_change: float = 0.0

    def registered(self) -> bool:
        """Asterisk holds a contact for it now (a removed contact's address is only "last seen")."""
        return bool(self.ip) and self.contact_status != "Removed"

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "technology": self.technology, "client": self.client,
                "type": self.type, "guid": self.guid, "in_files": self.in_files,
                "state": self.state, "peer_status": self.peer_status,
                "contact_uri": self.contact_uri, "contact_status": self.contact_status,
                "registered": self.registered(),
                "ip": self.ip, "port": self.port, "roundtrip_usec": self.roundtrip_usec,
                "address_source": self.address_source, "address_at": self.address_at,
                "last_change": self.last_change}


@dataclass(slots=True)
class Channel:
    id: str
    name: str
    state: str                   # ARI channel state: Down, Ring, Ringing, Up, Busy...
    endpoint: str                # "1003000" for PJSIP/1003000-00000001; else name sans suffix
    technology: str
    caller: str
    exten: str
    created: float
    originated: bool = False     # created in state Down: Asterisk placed it (originate, Dial)
    call_id: str = ""
    bridge_id: str = ""
    in_stasis: bool = False
    stasis_args: tuple[str, ...] = ()
    claimed_by: str = ""         # "" = not driven by us; else the component that drives it
    snoop: bool = False
    pair_key: str = ""           # Local/x@ctx-0001 for both halves of a Local channel pair

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "state": self.state, "endpoint": self.endpoint,
                "caller": self.caller, "exten": self.exten, "created": self.created,
                "call_id": self.call_id, "bridge_id": self.bridge_id,
                "in_stasis": self.in_stasis, "stasis_args": list(self.stasis_args),
                "claimed_by": self.claimed_by, "snoop": self.snoop}


@dataclass(slots=True)
class Call:
    id: str                      # the id of its first channel (Asterisk's uniqueid)
    server: str
    created: float
    state: str = S.CALL_RINGING
    client: str = ""
    origin: str = ""
    destination: str = ""
    answered_by: str = ""        # the answering channel, when `destination` is the number dialled
    direction: str = S.DIRECTION_UNKNOWN
    answered: float | None = None
    ended: float | None = None
    hangup_cause: int | None = None
    cause_txt: str = ""
    end_reason: str = ""
    dial_status: str = ""
    request_cause: int = 0       # last non-soft ChannelHangupRequest cause, a fallback
    channels: set[str] = field(default_factory=set)
    recording: str = ""
    recording_state: str = ""
    # Learnt from a resync and its answer time unknown: answered = adoption time, billsec a
    # lower bound. A call whose times a previous run had saved (active_calls) is restored
    # with them and is not flagged.
    adopted: bool = False

    @property
    def duration(self) -> float:
        end = self.ended if self.ended is not None else self.created
        return max(0.0, end - self.created)

    @property
    def billsec(self) -> float:
        if self.answered is None or self.ended is None:
            return 0.0
        return max(0.0, self.ended - self.answered)

    def line(self) -> str:
        """The v2.7 view of an active call."""
        origin = self.origin or ("originate" if self.direction == "originated" else "?")
        return f"{origin} -> {self.destination or '?'} ({self.state})"

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "server": self.server, "client": self.client,
                "origin": self.origin, "destination": self.destination,
                "answered_by": self.answered_by,
                "direction": self.direction, "state": self.state, "created": self.created,
                "answered": self.answered, "ended": self.ended,
                "hangup_cause": self.hangup_cause, "cause_txt": self.cause_txt,
                "end_reason": self.end_reason, "dial_status": self.dial_status,
                "duration": round(self.duration, 3), "billsec": round(self.billsec, 3),
                "channels": sorted(self.channels), "recording": self.recording,
                "recording_state": self.recording_state, "adopted": self.adopted}


@dataclass(slots=True)
class Bridge:
    id: str
    bridge_type: str = ""
    name: str = ""
    channels: set[str] = field(default_factory=set)


@dataclass(slots=True)
class RemoteIp:
    """One row of the v2.7 REMOTEIPS table."""
    ip: str
    first_seen: float
    last_seen: float
    endpoints: set[str] = field(default_factory=set)
    whitelist: bool = False      # v2.7 default "N"
    source: str = ""             # how it was first discovered: event | ami | cli

    def view(self) -> dict[str, Any]:
        return {"ip": self.ip, "first_seen": self.first_seen, "last_seen": self.last_seen,
                "endpoints": sorted(self.endpoints), "whitelist": self.whitelist,
                "source": self.source}


class Counters:
    """Plain integer attributes: the hot path does `counters.applied += 1`, nothing more."""

    __slots__ = (
        "adopted",
        "applied",
        "asterisk_restarts",
        "auth_failures",
        "bytes",
        "calls_ended",
        "calls_lost",
        "claimed",
        "continue_failed",
        "continued",
        "duplicate",
        "frames_lost",
        "handler_error",
        "illegal_transitions",
        "link_down",
        "link_up",
        "malformed",
        "outages",
        "readers_refused",
        "received",
        "rest_races",
        "rest_wait_failed",
        "rest_waited",
        "resync_failures",
        "resyncs",
        "seq_gaps",
        "superseded",
        "unknown_type",
    )

    PERSISTED = ("received", "applied", "duplicate", "malformed", "unknown_type", "calls_ended",
                 "calls_lost", "resyncs", "asterisk_restarts", "frames_lost", "outages")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def endpoint_touch(ep_id: str) -> str:
    """An endpoint's key in `State.touched`, apart from channel ids (which never hold a colon)."""
    return "endpoint:" + ep_id


class State:
    """Every table, plus the identity of the Asterisk they describe."""

    def __init__(self, server: str = "asterisk1",
                 remote_ips: dict[str, RemoteIp] | None = None) -> None:
        self.server = server
        self.endpoints: dict[str, Endpoint] = {}
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.calls: dict[str, Call] = {}           # active calls only; ended ones go to history
        # Calls opened by a leg Asterisk created to dial out (state Down), not yet announced:
        # the Dial event right after usually folds that leg into its caller's call.
        self.unannounced: set[str] = set()
        # the v2.7 REMOTEIPS table is one for all servers: every server's state shares it
        self.remote_ips: dict[str, RemoteIp] = {} if remote_ips is None else remote_ips
        self.local_pairs: dict[str, set[str]] = {}  # pair_key -> channel ids of both halves
        self.recordings: dict[str, str] = {}        # recording name -> call id
        # recording name -> the call it belongs to, kept after the call ends (transcoder tags)
        self.recording_calls: dict[str, dict[str, Any]] = {}
        self.counters = Counters()
        self.asterisk_id = ""                       # entity_id of the Asterisk we describe
        self.asterisk_startup = ""                  # its startup_time; a change = a restart
        # While a resync is in flight: ids whose fate was decided by an event after the
        # snapshot began, so the snapshot must not undo it (channel and bridge ids, and
        # endpoints as endpoint_touch(id)).
        self.touched: set[str] | None = None

    def touch_endpoint(self, ep_id: str) -> None:
        """An event just decided this endpoint's state or address: an older snapshot keeps off."""
        if self.touched is not None:
            self.touched.add(endpoint_touch(ep_id))

    def endpoint_touched(self, ep_id: str) -> bool:
        return self.touched is not None and endpoint_touch(ep_id) in self.touched

    def endpoint(self, technology: str, resource: str) -> Endpoint:
        """The endpoint record, created (and flagged as not in the files) if new."""
        key = resource if technology == "PJSIP" else f"{technology}/{resource}"
        ep = self.endpoints.get(key)
        if ep is None:
            ep = self.endpoints[key] = Endpoint(key, technology)
        return ep

    def remember_recording(self, name: str, call: Call) -> None:
        if len(self.recording_calls) >= 2000:  # bounded: the oldest goes first
            self.recording_calls.pop(next(iter(self.recording_calls)))
        self.recording_calls[name] = {"call_id": call.id, "client": call.client,
                                      "origin": call.origin, "destination": call.destination,
                                      "created": call.created}

    def call_of(self, channel_id: str) -> Call | None:
        channel = self.channels.get(channel_id)
        return self.calls.get(channel.call_id) if channel else None

    def active_calls(self, client: str | None = None) -> list[Call]:
        calls = sorted(self.calls.values(), key=lambda c: c.created)
        return [c for c in calls if client is None or c.client == client]

    def summary(self) -> dict[str, Any]:
        online = sum(1 for e in self.endpoints.values() if e.state == S.ENDPOINT_ONLINE)
        return {"server": self.server, "asterisk_id": self.asterisk_id,
                "asterisk_startup": self.asterisk_startup, "endpoints": len(self.endpoints),
                "online": online,
                "not_in_files": sum(1 for e in self.endpoints.values() if not e.in_files),
                "channels": len(self.channels), "bridges": len(self.bridges),
                "calls": len(self.calls),
                "calls_up": sum(1 for c in self.calls.values() if c.state == S.CALL_UP),
                "remote_ips": len(self.remote_ips)}


def load_files(state: State, tables: Any) -> dict[str, int]:
    """Copy the v2.7 endpoints (client, type, GUID) into the state; unflag the ones dropped."""
    listed = tables.endpoints
    added = 0
    for ep_id, meta in listed.items():
        ep = state.endpoint("PJSIP", ep_id)
        added += not ep.in_files
        ep.client, ep.type, ep.guid, ep.in_files = meta.client, meta.type or "", meta.guid or "", True
    dropped = 0
    for ep in state.endpoints.values():
        if ep.in_files and ep.id not in listed:
            ep.in_files, ep.client, ep.type, ep.guid = False, "", "", ""
            dropped += 1
    return {"listed": len(listed), "added": added, "dropped": dropped}
