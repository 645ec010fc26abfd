"""The events bus: what the engine concludes, published to a RabbitMQ topic exchange.

`buffer.py` (the bounded hand-over between the engine loop and the publisher), `message.py`
(routing key and versioned body), `publisher.py` (the thread with its own pika connection),
`component.py` (the engine component that hears the engine's publications).
"""
