"""Test doubles of the engine's collaborators."""

from __future__ import annotations

from typing import Any

from arimonitor.engine.state import Call, Channel, Endpoint, RemoteIp


class RecordingEffects:
    """An Effects that keeps what it was asked: for tests and replays."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.ended: list[dict[str, Any]] = []
        self.ips: dict[str, dict[str, Any]] = {}
        self.continued: list[str] = []
        self.joined: list[str] = []
        self.found_up: list[str] = []  # calls a resync found answered (call.up with resync)

    def call_started(self, call: Call) -> None:
        self.log.append(("call.ringing", call.id))

    def call_answered(self, call: Call, resync: bool = False) -> None:
        self.log.append(("call.up", call.id))
        if resync:
            self.found_up.append(call.id)

    def call_joined(self, call: Call) -> None:
        self.joined.append(call.id)  # not in `log`: no PUB, only the saved active row

    def call_ended(self, call: Call) -> None:
        self.log.append(("call.ended", call.id))
        self.ended.append(call.view())

    def endpoint_state(self, endpoint: Endpoint, old_state: str) -> None:
        self.log.append((f"endpoint.{endpoint.state}", endpoint.id))

    def endpoint_address(self, endpoint: Endpoint) -> None:
        self.log.append(("endpoint.address", (endpoint.id, endpoint.ip, endpoint.port)))

    def remote_ip(self, rip: RemoteIp, new_link: bool) -> None:
        self.ips[rip.ip] = rip.view()

    def stasis_start(self, channel: Channel, event: dict[str, Any]) -> None:
        if not channel.claimed_by:
            self.continued.append(channel.id)

    def recording(self, call: Call | None, what: str, recording: dict[str, Any]) -> None:
        self.log.append((f"recording.{what}", recording.get("name")))

    def warning(self, kind: str, text: str, data: dict[str, Any] | None = None) -> None:
        self.log.append((f"warning.{kind}", text))

    def hold(self) -> None:
        pass

    def release(self) -> None:
        pass

    def prune_active(self, keep: set[str]) -> int:
        return 0
