"""Which calls are recorded, and how: decided when a call of a client is answered.

- `gravar=S|N` of the client (`__CLIENTES__.DEF`), else `recordings.default_record`.
- A call we control (its channels are in our Stasis app, bridged by us): record the bridge.
- A call the dialplan routes (we only observe it): ARI answers 409 to recording a channel
  outside Stasis, so open a snoop channel (`spy=both`) into our app and record that.
- Name `client/YYYY-MM-DD/callid` (`client/YYYY-MM-DD/<server>-callid` on a further server:
  two Asterisks may give the same uniqueid), format wav; stopped (and the snoop hung up) when
  the call ends.
- A call a resync found answered (the engine was down, killed -9, as it connected): recorded
  from then on, a partial recording being better than none, and marked as started late. If our
  snoop of it is already there (the previous run made it), that snoop is recorded only when
  Asterisk has no live recording of that name: one recording per call, never a second.

The ARI side is a small protocol (`AriRecorder`) so the engine can run the REST calls where it
wants (its REST thread); a failure is logged in the recording log with its reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

SNOOP_PREFIX = "arimon-snoop-"
META_KEEP = 2000  # names remembered for MP3 tags after their call ended (oldest dropped first)
# The mark of a recording started when a resync found its call answered, not at the answer
# (the recording log's reason, `recordings`): the beginning of the call is missing.
LATE = "started late: call found answered by a resync (engine restart or link lost)"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class AriRecorder(Protocol):
    def record_bridge(self, bridge_id: str, name: str, fmt: str) -> None: ...
    def snoop(self, channel_id: str, snoop_id: str) -> None: ...  # spy=both, app=<our app>
    def record_channel(self, channel_id: str, name: str, fmt: str) -> None: ...
    # our snoop from before an engine restart: record it unless `name` is live in Asterisk
    def record_unless_live(self, channel_id: str, name: str, fmt: str) -> None: ...
    def stop_recording(self, name: str) -> None: ...
    def hangup(self, channel_id: str) -> None: ...


@dataclass(frozen=True)
class CallInfo:
    """What the policy needs of a call (the engine's Call + the bridge we made, if any)."""
    id: str
    client: str
    answered: float
    origin: str = ""
    destination: str = ""
    our_bridge: str | None = None  # a bridge we created in our app: record it directly
    channel: str = ""              # the channel to snoop when we only observe the call
    server: str = ""               # the Asterisk it is on ("": the first, or only, one)
    late: bool = False             # found answered by a resync: its recording starts late
    snoop: str = ""                # our snoop channel already in the call (a previous run's)


@dataclass(frozen=True)
class Plan:
    name: str
    kind: str  # bridge | snoop
    target: str  # bridge id, or the channel to snoop
    snoop_id: str = ""
    fmt: str = "wav"
    adopted_snoop: bool = False  # the snoop exists already: record it unless its name is live


def safe(part: str) -> str:
    """A name part Asterisk will use as a path part: no '/', no '..'."""
    cleaned = _UNSAFE.sub("_", part).strip(".") or "_"
    return cleaned


def recording_name(client: str, call_id: str, answered: float, server: str = "") -> str:
    day = dt.datetime.fromtimestamp(answered).strftime("%Y-%m-%d")
    call = f"{safe(server)}-{safe(call_id)}" if server else safe(call_id)
    return f"{safe(client or 'unknown')}/{day}/{call}"


def is_ours(name: str, server: str = "") -> bool:
    """A name `recording_name` (or the click-to-call flow, `c2c-<rid>`) gives: client/date/call,
    on a further `server` its call part `<server>-...`. A server's spool may hold other
    people's recordings (MixMonitor, voicemail greetings...): never fetched nor deleted."""
    parts = name.split("/")
    if len(parts) != 3 or not all(parts) or not _DAY.fullmatch(parts[1]):
        return False
    if any(safe(part) != part for part in parts):
        return False
    return not server or parts[2].startswith((f"{safe(server)}-", "c2c-"))


def wants_recording(client: str, records: Mapping[str, bool | None], default: bool) -> bool:
    """records: client id -> gravar (None when the client has no gravar= line)."""
    value = records.get(client)
    return default if value is None else value


def plan_for(call: CallInfo, records: Mapping[str, bool | None], default: bool) -> Plan | None:
    if not wants_recording(call.client, records, default):
        return None
    name = recording_name(call.client, call.id, call.answered, call.server)
    if call.our_bridge:
        return Plan(name, "bridge", call.our_bridge)
    if call.snoop:
        return Plan(name, "snoop", call.channel, snoop_id=call.snoop, adopted_snoop=True)
    if call.channel:
        return Plan(name, "snoop", call.channel, snoop_id=SNOOP_PREFIX + safe(call.id))
    return None


class Recorder:
    """Starts and stops recordings; remembers the call behind each name for the MP3 tags."""

    def __init__(self, ari: AriRecorder, records: Callable[[], Mapping[str, bool | None]],
                 default: Callable[[], bool],
                 failed: Callable[[str, str], None] = lambda name, reason: None) -> None:
        self.ari = ari
        self.records = records
        self.default = default
        self.failed = failed
        self.active: dict[tuple[str, str], Plan] = {}  # (server, call id) -> plan
        self.meta: dict[str, dict[str, str]] = {}  # recording name -> tags

    def claims(self, channel, args=()) -> bool:
        """Engine claimer: our snoop channels enter Stasis and must not be continued."""
        return str(getattr(channel, "id", "")).startswith(SNOOP_PREFIX)

    def describe(self, name: str) -> dict[str, str] | None:
        return self.meta.get(name)

    def wants(self, name: str) -> bool:
        """True while the call behind this recording name is still up (its plan active)."""
        return any(plan.name == name for plan in self.active.values())

    def call_answered(self, call: CallInfo) -> Plan | None:
        key = (call.server, call.id)
        if key in self.active:
            return None  # answered twice (merge, resync): one recording per call
        plan = plan_for(call, self.records(), self.default())
        if plan is None:
            return None
        self.active[key] = plan
        if len(self.meta) >= META_KEEP:
            self.meta.pop(next(iter(self.meta)))
        self.meta[plan.name] = {"client": call.client, "call_id": call.id,
                                "date": plan.name.split("/")[1], "origin": call.origin,
                                "destination": call.destination,
                                "datetime": dt.datetime.fromtimestamp(call.answered).strftime("%Y-%m-%dT%H:%M:%S")}
        if call.late or plan.adopted_snoop:
            # the recording log says so once our record request went through (wiring.py); a
            # recording still live from before the restart is kept, started on time: not marked
            self.meta[plan.name]["late"] = LATE
        try:
            if plan.adopted_snoop:
                self.ari.record_unless_live(plan.snoop_id, plan.name, plan.fmt)
            elif plan.kind == "bridge":
                self.ari.record_bridge(plan.target, plan.name, plan.fmt)
            else:
                self.ari.snoop(plan.target, plan.snoop_id)
                self.ari.record_channel(plan.snoop_id, plan.name, plan.fmt)
        except Exception as exc:  # noqa: BLE001  any REST failure: the call goes on unrecorded
            log.warning("cannot record call %s (%s): %s", call.id, plan.kind, exc)
            self.active.pop(key, None)
            self.failed(plan.name, f"{plan.kind} recording refused: {exc}")
            return None
        return plan

    def refused(self, name: str, reason: str) -> None:
        """Asterisk refused a recording after call_answered returned (REST run elsewhere).

        The snoop is not hung up here: a snoop the refused step made is undone by that step;
        one it did not make (a snoop id already in use) may be a running recording."""
        for key, plan in list(self.active.items()):
            if plan.name == name:
                del self.active[key]
        log.warning("recording %s refused: %s", name, reason)
        self.failed(name, reason)

    def call_ended(self, call_id: str, server: str = "") -> None:
        plan = self.active.pop((server, call_id), None)
        if plan is None:
            return
        for step in (lambda: self.ari.stop_recording(plan.name),
                     lambda: plan.snoop_id and self.ari.hangup(plan.snoop_id)):
            try:
                step()
            except Exception as exc:  # noqa: BLE001  already gone with the call is normal
                log.info("stopping recording %s: %s", plan.name, exc)
