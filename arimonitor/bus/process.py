"""The bus process: the engine's publications -> the events bus on RabbitMQ.

Its own supervisord program (`bus`, started only when `[bus] enabled`), so pika's encoding and
sending cost the engine nothing: the engine already sends every publication on its PUB socket
for `arictl watch`, and this process SUBscribes to it (feed.py), encodes the bus topics into
the bounded EventBuffer and runs the BusPublisher thread (persistent, confirmed). Every
REPORT_INTERVAL s it sends its view to the engine (`_report`, process `bus`), which is what
`arictl stats` (group bus), `status` and Prometheus (`arimonitor_bus_*`) show.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import zmq

from arimonitor.bus.buffer import EventBuffer
from arimonitor.bus.feed import Feed
from arimonitor.bus.publisher import BrokerAddress, BusPublisher
from arimonitor.config import Config
from arimonitor.control_client import ControlClient, NoAnswer, WrongReply

PROCESS = "bus"
REPORT_INTERVAL = 2.0  # seconds; the engine calls a report stale after three missed ones
REPORT_TIMEOUT = 2.0
SUB_HWM = 100_000      # as the engine's PUB: past it ZeroMQ drops, and the stamps show the gap


def address(cfg: Config) -> BrokerAddress:
    return BrokerAddress(cfg["bus.host"], cfg["bus.port"], cfg["bus.vhost"], cfg["bus.user"],
                         cfg["bus.password"])


def report(feed: Feed, publisher: BusPublisher) -> dict[str, Any]:
    """The `_report` body: the bus view under `counters` (the engine keeps it as it came)."""
    return {"process": PROCESS, "broker": str(publisher.address), "queue": None,
            "connected_since": publisher.connected_since,
            "counters": {**publisher.view(), **feed.view()}}


class Reporter(threading.Thread):
    def __init__(self, cfg: Config, feed: Feed, publisher: BusPublisher, stopper: Any,
                 log: logging.Logger) -> None:
        super().__init__(name="bus-report", daemon=True)
        self.feed, self.publisher, self.stopper, self.log = feed, publisher, stopper, log
        self.client = ControlClient(zmq.Context.instance(), cfg["zmq.control"], REPORT_TIMEOUT)

    def send_once(self) -> None:
        try:
            reply = self.client.request("_report", [json.dumps(report(self.feed, self.publisher))])
        except NoAnswer:
            return  # the engine may be restarting: the next interval tries again
        except WrongReply as exc:
            self.log.warning("engine refused the bus report: %s", exc)
            return
        if reply.get("status") != "ok":
            self.log.warning("engine refused the bus report: %s", reply.get("reason"))

    def run(self) -> None:
        try:
            while True:
                try:
                    self.send_once()
                except (zmq.ZMQError, ValueError) as exc:
                    self.log.debug("bus report to the engine failed: %s", exc)
                    self.client.close()
                if self.stopper.wait(REPORT_INTERVAL):
                    return
        finally:
            self.client.close()


def run(cfg: Config, stopper: Any, log: logging.Logger) -> int:
    if not cfg["bus.enabled"]:
        log.info("events bus off ([bus] enabled = no): nothing to do")
        while not stopper.wait(60.0):
            pass
        return 0
    buffer = EventBuffer(cfg["bus.buffer"])
    feed = Feed(buffer, cfg["ari.server_id"], str(int(time.time() * 1000)))
    publisher = BusPublisher(buffer, address(cfg), cfg["bus.exchange"])
    publisher.start()
    Reporter(cfg, feed, publisher, stopper, log).start()
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, SUB_HWM)
    sub.setsockopt(zmq.SUBSCRIBE, b"")  # every topic: a gap in the stamps is a real loss
    sub.connect(cfg["zmq.publish"])
    log.info("events bus: reading the engine's publications at %s for RabbitMQ %s, exchange %s",
             cfg["zmq.publish"], publisher.address, cfg["bus.exchange"])
    try:
        while not stopper.stopping:
            if not sub.poll(200):
                continue
            for _ in range(1000):  # a burst in one go, then a look at the stopper
                try:
                    feed.on_frames(sub.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
    finally:
        sub.close()
        publisher.stop()
    return 0
