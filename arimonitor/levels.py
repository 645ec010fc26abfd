"""Run-time log level: every process follows `control.level` messages on the engine's PUB.

A thread of its own with its own SUB socket, so no process loop has to know about it and
`arictl debug on transcoder_00` reaches a worker busy encoding.
"""

from __future__ import annotations

import logging
import threading

import zmq

from arimonitor import protocol
from arimonitor.logs import set_level

log = logging.getLogger(__name__)


class LevelListener(threading.Thread):
    def __init__(self, publish_address: str, process_name: str, stop: threading.Event):
        super().__init__(name="level-listener", daemon=True)
        self.address = publish_address
        self.process_name = process_name
        self.stop_event = stop

    def matches(self, target: str) -> bool:
        # "transcoder" reaches every transcoder_NN; "all" reaches everyone
        return target in {"all", self.process_name} or self.process_name.startswith(f"{target}_")

    def run(self) -> None:
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SUBSCRIBE, f"{protocol.TOPIC_CONTROL}.level".encode())
        sock.connect(self.address)
        try:
            while not self.stop_event.is_set():
                if not sock.poll(500):
                    continue
                parts = sock.recv_multipart()
                try:
                    body = protocol.loads(parts[-1])
                    if self.matches(str(body["process"])):
                        set_level(str(body["level"]).upper())
                        log.warning("log level now %s", str(body["level"]).upper())
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("ignored a malformed level message: %s", exc)
        finally:
            sock.close()
