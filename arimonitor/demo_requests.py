"""Click-to-call traffic for `arimonitor demo`: a request on the queue every few seconds.

Stands in for a client's web system, so a new user sees the RabbitMQ path work too: most
requests connect two registered endpoints of one client, some name an origin
that is not registered (refused "origin offline"). Each waits for its outcome on a reply
queue of its own and prints one line. Only in demo mode; never part of a real deployment.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Callable

import pika
import requests

from arimonitor.clicktocall.broker import parameters
from arimonitor.config import Config
from arimonitor.v27 import load_all


class DemoRequester(threading.Thread):
    def __init__(self, cfg: Config, say: Callable[[str], None], every: float = 12.0, seed: int = 7):
        super().__init__(name="demo-c2c", daemon=True)
        self.cfg = cfg
        self.say = say
        self.every = every
        self.rng = random.Random(seed)
        self.stop_event = threading.Event()

    def stop(self) -> None:
        self.stop_event.set()

    def registered(self) -> set[str]:
        """Endpoints registered on the simulator now (its control API), so most requests ring."""
        url = f"http://{self.cfg['sim.host']}:{self.cfg['sim.port']}/_sim/state"
        try:
            endpoints = requests.get(url, timeout=2).json()["endpoints"]
        except (requests.RequestException, ValueError, KeyError):
            return set()
        return {name for name, e in endpoints.items() if e.get("registered")}

    def pick(self, tables) -> dict:
        online = self.registered()
        clients = [c for c in tables.clients.values() if c.active and tables.endpoints_of(c.id)]
        client = self.rng.choice(clients)
        endpoints = [e.id for e in tables.endpoints_of(client.id)]
        ringing = [e for e in endpoints if e in online]
        # one in five asks for an origin that is not registered: the refusal is part of the show
        pool = ringing if ringing and self.rng.random() < 0.8 else endpoints
        origin = self.rng.choice(pool)
        others = [e for e in (ringing or endpoints) if e != origin] or [origin]
        destination = self.rng.choice(others)
        return {"request_id": f"demo-{uuid.uuid4().hex[:12]}", "client": client.id, "origin": origin,
                "destination": destination, "timeout": 20}

    def run(self) -> None:
        tables = load_all(self.cfg["files.endpoints"], self.cfg["files.clients"], self.cfg["files.mqservers"])
        if not tables.mqservers or not tables.clients:
            self.say("demo click-to-call: no RabbitMQ server or client in the v2.7 files; off")
            return
        server = tables.mqservers[0]
        try:
            connection = pika.BlockingConnection(parameters(server))
        except pika.exceptions.AMQPError as exc:
            self.say(f"demo click-to-call: RabbitMQ not reachable ({type(exc).__name__}); off")
            return
        try:
            channel = connection.channel()
            reply_queue = channel.queue_declare("", exclusive=True).method.queue
            channel.basic_consume(reply_queue, self._outcome, auto_ack=True)
            while not self.stop_event.is_set():
                request = self.pick(tables)
                channel.basic_publish(
                    "", server.queue, json.dumps(request).encode(),
                    # a demo request left on the queue when the demo stops must not ring phones
                    # at the next start: RabbitMQ drops it after a minute
                    pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                         reply_to=reply_queue, correlation_id=request["request_id"],
                                         expiration="60000"))
                self.say(f"demo click-to-call: asked {request['origin']} -> {request['destination']} "
                         f"for client {request['client']} ({request['request_id']})")
                deadline = self.every
                while deadline > 0 and not self.stop_event.is_set():
                    connection.process_data_events(time_limit=0.5)
                    deadline -= 0.5
        except pika.exceptions.AMQPError as exc:
            self.say(f"demo click-to-call: stopped ({type(exc).__name__})")
        finally:
            if connection.is_open:
                connection.close()

    def _outcome(self, _channel, _method, properties, body: bytes) -> None:
        try:
            outcome = json.loads(body)
        except ValueError:
            return
        self.say(f"demo click-to-call: {properties.correlation_id}: {outcome.get('result')} "
                 f"{outcome.get('reason') or ''} {outcome.get('text') or ''}".rstrip())
