"""The bus process: the engine's publications -> the events bus on RabbitMQ.

Its own supervisord program (`bus`, started only when `[bus] enabled`), so pika's encoding and
sending cost the engine nothing: the engine already sends every publication on its PUB socket
for `arictl watch`, and this process SUBscribes to it (feed.py), encodes the bus topics into
the bounded EventBuffer and runs the BusPublisher thread (persistent, confirmed). Every
REPORT_INTERVAL s it sends its view to the engine (`_report`, process `bus`), which is what
`arictl stats` (group bus), `status` and Prometheus (`arimonitor_bus_*`) show, and keeps its
position (the engine stamp of the last event the broker confirmed) in `var/bus.position`, so a
restarted bus process fetches from the engine what it had not yet sent, and nothing twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import zmq

from arimonitor.bus.buffer import EventBuffer
from arimonitor.bus.feed import Feed, Unreachable
from arimonitor.bus.publisher import BrokerAddress, BusPublisher
from arimonitor.config import Config
from arimonitor.control_client import ControlClient, NoAnswer, ReportLoop, WrongReply

PROCESS = "bus"
REPORT_INTERVAL = 2.0  # seconds; the engine calls a report stale after three missed ones
REPORT_TIMEOUT = 2.0
SUB_HWM = 100_000      # as the engine's PUB: past it ZeroMQ drops, and the stamps show the gap
CATCH_UP_TIMEOUT = 5.0  # seconds per `_publications` request (the engine may be resyncing)
CATCH_UP_TRIES = 3
POSITION_FILE = "bus.position"


def address(cfg: Config) -> BrokerAddress:
    return BrokerAddress(cfg["bus.host"], cfg["bus.port"], cfg["bus.vhost"], cfg["bus.user"],
                         cfg["bus.password"])


def report(feed: Feed, publisher: BusPublisher) -> dict[str, Any]:
    """The `_report` body: the bus view under `counters` (the engine keeps it as it came)."""
    return {"process": PROCESS, "broker": str(publisher.address), "queue": None,
            "connected_since": publisher.connected_since,
            "counters": {**publisher.view(), **feed.view()}}


class Position:
    """`var/bus.position`: `<engine run>.<seq>` of the last event the broker confirmed."""

    def __init__(self, path: Path, log: logging.Logger) -> None:
        self.path, self.log = path, log
        self.saved = ""
        self.failing = False  # a write failure is logged once per episode

    def load(self) -> tuple[str, int] | None:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        run, _, seq = text.rpartition(".")
        if not (run.isdigit() and seq.isdigit()):
            self.log.warning("events bus: %s holds no position (%r): starting from the engine's "
                             "kept publications", self.path, text[:40])
            return None
        self.saved = text
        return run, int(seq)

    def save(self, stamp: str) -> None:
        if not stamp or stamp == self.saved:
            return
        part = self.path.with_name(self.path.name + ".part")
        try:
            part.write_text(stamp + "\n", encoding="ascii")
            os.replace(part, self.path)
        except OSError as exc:
            if not self.failing:
                self.failing = True
                self.log.warning("events bus: cannot keep the position in %s: %s (a restart "
                                 "may send some events again)", self.path, exc)
            return
        self.saved, self.failing = stamp, False


def catch_up_from(client: ControlClient, log: logging.Logger):
    """The feed's catch_up: `_publications` on the control socket, a few tries."""
    def catch_up(run: str, after: int) -> dict[str, Any]:
        for _ in range(CATCH_UP_TRIES):
            try:
                reply = client.request("_publications", [run, str(after)])
            except (NoAnswer, WrongReply, zmq.ZMQError):
                continue
            if reply.get("status") == "ok":
                return reply["data"]
            log.warning("engine refused the bus catch-up: %s", reply.get("reason"))
            break
        raise Unreachable(f"no catch-up from the engine after {after}")
    return catch_up


class Reporter(ReportLoop):
    """Every REPORT_INTERVAL s: the position kept, then the bus view sent to the engine."""

    what = "bus report"

    def __init__(self, cfg: Config, feed: Feed, publisher: BusPublisher, stopper: Any,
                 log: logging.Logger, position: Position) -> None:
        super().__init__("bus-report", cfg["zmq.control"], stopper, log, REPORT_INTERVAL,
                         REPORT_TIMEOUT)
        self.feed, self.publisher, self.position = feed, publisher, position

    def tick(self) -> None:
        self.position.save(self.publisher.buffer.last_confirmed)
        self.ask("_report", [json.dumps(report(self.feed, self.publisher))], "the bus report")


def run(cfg: Config, stopper: Any, log: logging.Logger) -> int:
    if not cfg["bus.enabled"]:
        log.info("events bus off ([bus] enabled = no): nothing to do")
        while not stopper.wait(60.0):
            pass
        return 0
    buffer = EventBuffer(cfg["bus.buffer"])
    position = Position(Path(cfg["paths.var"]) / POSITION_FILE, log)
    catch_up = ControlClient(zmq.Context.instance(), cfg["zmq.control"], CATCH_UP_TIMEOUT)
    feed = Feed(buffer, cfg["ari.server_id"], str(int(time.time() * 1000)),
                catch_up=catch_up_from(catch_up, log), position=position.load())
    publisher = BusPublisher(buffer, address(cfg), cfg["bus.exchange"])
    publisher.start()
    Reporter(cfg, feed, publisher, stopper, log, position).start()
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
        catch_up.close()
        publisher.stop()
        position.save(buffer.last_confirmed)
    return 0
