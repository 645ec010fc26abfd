"""The events bus: what the engine concludes, published to a RabbitMQ topic exchange.

The bus process (supervisord program `bus`): `process.py` (its composition root and `_report`),
`feed.py` (the engine's PUB publications, gap-checked, into the buffer), `buffer.py` (the bounded
hand-over to the publisher thread), `message.py` (routing key and versioned body),
`publisher.py` (the thread with its own pika connection). In the engine: `component.py` (the
bus process's report as the `bus` view of `stats` and Prometheus).
"""
