"""The control socket: a ROUTER that answers REQ clients (arictl, the manager port, others).

Each request is [identity, b"", json]. Fast commands run inline in the loop; `slow` ones in a
thread, their reply sent from the loop when done (ROUTER allows deferred replies). At most
MAX_SLOW slow commands run at once; one more is answered E_BUSY at once, not queued. Every
reply is the protocol envelope; a malformed request is answered with E_MALFORMED, never a crash.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import zmq

from arimonitor import API_VERSION, protocol
from arimonitor.commands.registry import CommandError, Registry
from arimonitor.engine.loop import Loop

log = logging.getLogger(__name__)

# Slow commands running at once (each on a thread of its own). A cap with an immediate E_BUSY
# rather than a ThreadPoolExecutor's queue: nothing waits unboundedly, and the threads stay
# daemon threads, so a command stuck on a dead Asterisk never holds up the engine's exit.
MAX_SLOW = 4


class ControlServer:
    def __init__(self, sock: zmq.Socket, loop: Loop, registry: Registry, ctx: Any,
                 max_slow: int = MAX_SLOW) -> None:
        self.sock = sock
        self.max_slow = max_slow
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
        # slow_running only changes on the loop thread (here and in done), so no lock is needed
        if self.slow_running >= self.max_slow:
            self._reply(route, protocol.error(
                req_id, protocol.E_BUSY, f"{cmd.name}: {self.slow_running} slow command(s) "
                "already running; try again when they are done"))
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
