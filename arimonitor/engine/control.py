"""The control socket: a ROUTER that answers REQ clients (arictl, the manager port, others).

Each request is [identity, b"", json]. Fast commands run inline in the loop; `slow` ones in a
thread, their reply sent from the loop when done (ROUTER allows deferred replies). Every reply
is the protocol envelope; a malformed request is answered with E_MALFORMED, never a crash.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import zmq

from arimonitor import API_VERSION, protocol
from arimonitor.console.registry import CommandError, Registry
from arimonitor.engine.loop import Loop

log = logging.getLogger(__name__)


def bind_private(sock: zmq.Socket, endpoint: str) -> None:
    """Bind; an ipc:// file is made 0600 (the config already refuses non-loopback tcp)."""
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://"):]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        old = os.umask(0o077)
        try:
            sock.bind(endpoint)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
    else:
        sock.bind(endpoint)


class ControlServer:
    def __init__(self, sock: zmq.Socket, loop: Loop, registry: Registry, ctx: Any) -> None:
        self.sock = sock
        self.loop = loop
        self.registry = registry
        self.ctx = ctx
        self.requests = 0
        self.errors = 0
        self.slow_running = 0

    def on_readable(self, sock: zmq.Socket) -> None:
        for _ in range(100):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.requests += 1
            self._handle(frames)

    def _handle(self, frames: list[bytes]) -> None:
        if len(frames) < 3 or frames[-2] != b"":
            # Not a REQ envelope: we cannot even address a reply; say so in the log.
            self.errors += 1
            log.warning("control: dropped a message that is not a REQ envelope (%d parts)", len(frames))
            return
        route, payload = frames[:-1], frames[-1]
        try:
            message = json.loads(payload)
        except ValueError as exc:
            self._reply(route, protocol.error(None, protocol.E_MALFORMED, f"request is not JSON: {exc}"))
            return
        req_id = message.get("id") if isinstance(message, dict) else None
        if isinstance(message, dict) and message.get("api", API_VERSION) != API_VERSION:
            self._reply(route, protocol.error(
                req_id, protocol.E_API_VERSION,
                f"client speaks API {message.get('api')!r}, engine speaks {API_VERSION}: "
                "update arictl or the engine"))
            return
        try:
            cmd, kwargs = self.registry.prepare(message)
        except CommandError as exc:
            self._reply(route, protocol.error(req_id, exc.code, exc.reason, exc.data))
            return
        if not cmd.slow:
            self._reply(route, self.registry.execute(req_id, cmd, kwargs, self.ctx))
            return
        self.slow_running += 1

        def done(reply: Any, error: BaseException | None) -> None:
            self.slow_running -= 1
            if error is not None:  # execute() never raises; this is a bug guard
                reply = protocol.error(req_id, protocol.E_INTERNAL, f"{cmd.name} failed: {error}")
            self._reply(route, reply)

        self.loop.run_in_thread(lambda: self.registry.execute(req_id, cmd, kwargs, self.ctx), done,
                                name=f"cmd-{cmd.name}")

    def _reply(self, route: list[bytes], reply: dict) -> None:
        if reply.get("status") != protocol.STATUS_OK:
            self.errors += 1
        try:
            self.sock.send_multipart([*route, protocol.dumps(reply)], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # the client went away: nothing to answer
            log.info("control: reply not sent: %s", exc)
