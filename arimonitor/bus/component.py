"""The events bus as an engine component (one line in engineproc/app.py COMPONENTS).

It hears the engine's publications through the door (`api.subscribe`), the same ones the PUB
socket carries to `arictl watch`: one source, so the bus and watch never disagree. On the loop
thread it only encodes the message and appends it to the bounded buffer; the publisher thread
does all the talking to RabbitMQ. `[bus] enabled = no` (the default) leaves it out entirely.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from arimonitor.bus import message
from arimonitor.bus.buffer import BusEvent, EventBuffer
from arimonitor.bus.publisher import BrokerAddress, BusPublisher
from arimonitor.engine.api import EngineApi

log = logging.getLogger(__name__)


class BusComponent:
    def __init__(self, api: EngineApi) -> None:
        cfg = api.cfg
        self.enabled = bool(cfg["bus.enabled"])
        self.server = cfg["ari.server_id"]
        self.run = str(int(time.time() * 1000))  # this engine run, in every body and message id
        self.seq = 0
        self.buffer = EventBuffer(cfg["bus.buffer"])
        self.publisher = BusPublisher(
            self.buffer, BrokerAddress(cfg["bus.host"], cfg["bus.port"], cfg["bus.vhost"],
                                       cfg["bus.user"], cfg["bus.password"]),
            cfg["bus.exchange"])
        api.offer("bus", self.view)
        if self.enabled:
            for topic in message.BUS_TOPICS:
                api.subscribe(f"{topic}.", self.on_publication)

    def on_publication(self, topic: str, body: dict[str, Any]) -> None:
        """Loop thread: encode and append, nothing that could wait on the broker."""
        self.seq += 1
        server = body.get("server") or self.server
        key, data = message.encode(topic, body, server=server, seq=self.seq, run=self.run)
        self.buffer.put(BusEvent(self.seq, key, data, f"{self.run}.{self.seq}"))

    def view(self) -> dict[str, Any]:
        return {"enabled": self.enabled, **self.publisher.view()} if self.enabled else {"enabled": False}

    def start(self) -> None:
        if not self.enabled:
            log.info("events bus off ([bus] enabled = no)")
            return
        self.publisher.start()

    def close(self) -> None:
        if self.enabled:
            self.publisher.stop()
