"""The client's web system of the live tests: click-to-call requests over the real RabbitMQ
(127.0.0.1:5672), and the outcomes that come back on its own reply queue."""

from __future__ import annotations

import json
import uuid

import pika

from tests.support import eventually_assert


class Requests:
    """The client's web system: requests on the queue, outcomes on its own reply queue."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
        self.channel = self.connection.channel()
        self.reply_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.got: dict[str, dict] = {}

    def send(self, **body) -> str:
        body.setdefault("request_id", f"live-{uuid.uuid4().hex[:12]}")
        props = pika.BasicProperties(reply_to=self.reply_queue, correlation_id=body["request_id"],
                                     delivery_mode=2, content_type="application/json")
        self.channel.basic_publish("", self.queue, json.dumps(body).encode(), props)
        return body["request_id"]

    def final(self, request_id: str, timeout: float = 40) -> dict:
        def arrived() -> dict:
            while True:
                method, props, body = self.channel.basic_get(self.reply_queue, auto_ack=True)
                if method is None:
                    break
                message = json.loads(body)
                if message.get("event") == "final":
                    self.got[props.correlation_id] = message
            assert request_id in self.got, f"no final for {request_id} yet"
            return self.got[request_id]
        return eventually_assert(arrived, timeout=timeout, interval=0.2)

    def close(self) -> None:
        self.connection.close()
