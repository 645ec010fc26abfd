"""The simulated PBX's objects: endpoints, channels, bridges, recordings. Plain data."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from arimonitor.sim.shapes import ari_time, caller_id

# Endpoint behaviour when it is called (set through the control API).
ANSWER, BUSY, NOANSWER, DEAD = "answer", "busy", "noanswer", "dead"
BEHAVIOURS = (ANSWER, BUSY, NOANSWER, DEAD)


class AriError(Exception):
    """A REST failure with Asterisk's own status and body."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else {"message": message}


@dataclass
class Behaviour:
    mode: str = ANSWER
    answer_after: float = 1.0  # seconds of ringing before a phone answers
    timeout_cause: int = 19  # cause when the ring timeout expires (real Asterisk: 19, or 0)
    talk: float = 5.0  # a dialplan call's talk time before the caller hangs up

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Endpoint:
    resource: str
    technology: str = "PJSIP"
    cli: str = ""
    registered: bool = False
    reachable: bool = False
    qualify: bool = False
    ip: str = ""
    port: int = 5060
    user_agent: str = "arimonitor-sim"
    call_id: str = ""
    channel_ids: list[str] = field(default_factory=list)
    behaviour: Behaviour = field(default_factory=Behaviour)

    @property
    def key(self) -> str:
        return f"{self.technology}/{self.resource}"

    @property
    def uri(self) -> str:
        return f"sip:{self.resource}@{self.ip}:{self.port};transport=UDP"

    @property
    def state(self) -> str:
        return "online" if self.registered and self.reachable else "offline"

    def json(self) -> dict[str, Any]:
        return {"technology": self.technology, "resource": self.resource, "state": self.state,
                "channel_ids": list(self.channel_ids)}


@dataclass
class Channel:
    id: str
    name: str
    tech: str
    resource: str = ""
    state: str = "Down"
    protocol_id: str = ""
    caller: dict[str, str] = field(default_factory=caller_id)
    connected: dict[str, str] = field(default_factory=caller_id)
    context: str = "default"
    exten: str = "s"
    priority: int = 1
    app_name: str = ""
    app_data: str = ""
    creationtime: str = field(default_factory=ari_time)
    app: str | None = None  # the Stasis app that owns it, when in Stasis
    args: list[str] = field(default_factory=list)
    stasis_app: str = ""  # where it enters Stasis on answer (originate)
    bridge_id: str | None = None
    peer_id: str | None = None  # Local: the other half
    half: int = 0  # Local: 1 or 2
    program: str = ""  # Local ;2: the lab extension it runs
    continues: bool = False  # after StasisEnd the dialplan goes on (inbound calls)
    answered: bool = False
    ringing_since: float = 0.0
    dial_timeout: float = 30.0
    variables: dict[str, str] = field(default_factory=dict)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    gone: bool = False
    dial_peer: str | None = None  # dialplan Dial(): the callee channel
    dialled_by: str | None = None  # dialplan Dial(): the caller channel

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "state": self.state, "protocol_id": self.protocol_id,
            "caller": dict(self.caller), "connected": dict(self.connected), "accountcode": "",
            "dialplan": {"context": self.context, "exten": self.exten, "priority": self.priority,
                         "app_name": self.app_name, "app_data": self.app_data},
            "creationtime": self.creationtime, "language": "en",
        }


@dataclass
class Bridge:
    id: str
    bridge_type: str = "mixing"
    name: str = ""
    technology: str = "simple_bridge"
    app: str = ""
    channels: list[str] = field(default_factory=list)
    creationtime: str = field(default_factory=ari_time)

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "technology": self.technology, "bridge_type": self.bridge_type,
                "bridge_class": "stasis", "creator": "Stasis", "name": self.name,
                "channels": list(self.channels), "creationtime": self.creationtime,
                "video_mode": "talker"}


@dataclass
class Recording:
    name: str
    target_uri: str
    fmt: str = "wav"
    state: str = "recording"
    started: float = 0.0
    app: str = ""
    target_id: str = ""
