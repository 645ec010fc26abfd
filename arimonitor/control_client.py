"""The engine's control socket from the engine side's other parts (the manager port, the
click-to-call consumer's reports): one lazy-pirate REQ client, pyzmq.

    client = ControlClient(context, cfg["zmq.control"], timeout=2.0)
    reply = client.request("_report", [json.dumps(report)])   # the reply envelope (a dict)

LINGER 0 and a poll with a timeout, never a blocking recv. On silence the socket is closed
and a fresh one made for the next request (a REQ socket that missed its reply cannot send
again), and `NoAnswer` is raised; the request is not re-sent (it may already have run, and
commands like `set` are not idempotent). A reply to another request closes the socket too
(`WrongReply`). arictl has its own stdlib transport (console/zmtp.py) for start-up cost.

`ReportLoop`: the thread a process (the bus, the click-to-call consumer) tells the engine how
it is doing from, every interval, with its own client; a missing engine is normal (it may be
restarting), so a request that goes unanswered is simply made again at the next interval.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from typing import Any

import zmq

from arimonitor import protocol


class NoAnswer(TimeoutError):
    """The engine did not answer within the timeout (down, restarting, or busy)."""


class WrongReply(Exception):
    """The reply was not one to our request."""


class ControlClient:
    def __init__(self, context: zmq.Context, endpoint: str, timeout: float,
                 via: str | None = None) -> None:
        self.context, self.endpoint, self.timeout, self.via = context, endpoint, timeout, via
        self.sock: zmq.Socket | None = None
        self._ids = itertools.count(1)
        self._prefix = f"{uuid.uuid4().hex[:12]}-{threading.get_ident()}"

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None

    def request(self, command: str, args: list[str]) -> dict[str, Any]:
        """The reply envelope; raises NoAnswer or WrongReply (the socket is then renewed)."""
        if self.sock is None:
            self.sock = self.context.socket(zmq.REQ)
            self.sock.setsockopt(zmq.LINGER, 0)
            self.sock.connect(self.endpoint)
        req_id = f"{self._prefix}-{next(self._ids)}"
        self.sock.send(protocol.request(req_id, command, args, via=self.via))
        if not self.sock.poll(int(self.timeout * 1000)):
            self.close()
            raise NoAnswer(f"the engine did not answer within {self.timeout:g}s")
        reply = protocol.loads(self.sock.recv(zmq.NOBLOCK))
        if not isinstance(reply, dict) or reply.get("id") != req_id:
            self.close()
            raise WrongReply("the engine answered another request")
        return reply


class ReportLoop(threading.Thread):
    """A daemon thread running `tick()` every `interval` s until `stopper.wait` says stop;
    `ask()` makes one request of the engine. `what` names the loop in its log lines."""

    what = "report"

    def __init__(self, name: str, endpoint: str, stopper: Any, log: logging.Logger,
                 interval: float, timeout: float, context: zmq.Context | None = None) -> None:
        super().__init__(name=name, daemon=True)
        self.stopper, self.log, self.interval = stopper, log, interval
        self.client = ControlClient(context or zmq.Context.instance(), endpoint, timeout)

    def tick(self) -> None:
        """One interval's work."""
        raise NotImplementedError

    def ask(self, command: str, args: list[str], what: str = "") -> dict[str, Any] | None:
        """One request to the engine; its reply, or None (no answer in time, or refused:
        logged as "engine refused <what or command>")."""
        try:
            reply = self.client.request(command, args)
        except NoAnswer:
            return None  # the engine may be restarting: try again at the next interval
        except WrongReply as exc:
            self.log.warning("engine refused %s: %s", what or command, exc)
            return None
        if reply.get("status") != protocol.STATUS_OK:
            self.log.warning("engine refused %s: %s", what or command, reply.get("reason"))
            return None
        return reply

    def run(self) -> None:
        try:
            while True:
                try:
                    self.tick()
                except (zmq.ZMQError, ValueError) as exc:
                    self.log.debug("%s to the engine failed: %s", self.what, exc)
                    self.client.close()
                if self.stopper.wait(self.interval):
                    return
        finally:
            self.client.close()
