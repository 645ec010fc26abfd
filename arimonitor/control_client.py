"""The engine's control socket from the engine side's other parts (the manager port, the
click-to-call consumer's reports): one lazy-pirate REQ client, pyzmq.

    client = ControlClient(context, cfg["zmq.control"], timeout=2.0)
    reply = client.request("_report", [json.dumps(report)])   # the reply envelope (a dict)

LINGER 0 and a poll with a timeout, never a blocking recv. On silence the socket is closed
and a fresh one made for the next request (a REQ socket that missed its reply cannot send
again), and `NoAnswer` is raised; the request is not re-sent (it may already have run, and
commands like `set` are not idempotent). A reply to another request closes the socket too
(`WrongReply`). arictl has its own stdlib transport (console/zmtp.py) for start-up cost.
"""

from __future__ import annotations

import itertools
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
