"""Keep `<queue>.dead` bounded: at most `clicktocall.dead_letter_max` messages, none older than
`clicktocall.dead_letter_max_age`; what goes is counted (`dead_dropped`) and logged once per
sweep.

Done by the consumer, not by queue arguments: RabbitMQ refuses to re-declare an existing
queue with other arguments (406), and `<queue>.dead` may already exist from an earlier
version. Oldest first (the head): a passive declare gives the length, `basic_get` + ack drops
the head while the queue is too long, and while the head's `x-c2c-refused-at` is too old (a
head that is young enough goes back with a nack, requeue: it keeps its place).
"""

from __future__ import annotations

import time

from arimonitor.clicktocall import outcomes

MAX_PER_SWEEP = 1000  # drops per sweep: a huge backlog shrinks over a few sweeps, never stalls


def trim(channel, queue: str, max_length: int, max_age: float, now: float | None = None) -> int:
    """Drop from the head of `queue` until it fits; returns how many went."""
    now = time.time() if now is None else now
    length = channel.queue_declare(queue, passive=True).method.message_count
    dropped = 0
    while dropped < MAX_PER_SWEEP:
        method, props, _body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            break
        too_many = length - dropped > max_length
        if too_many or _age(props, now) > max_age:
            channel.basic_ack(method.delivery_tag)
            dropped += 1
        else:
            channel.basic_nack(method.delivery_tag, requeue=True)
            break
    return dropped


def _age(props, now: float) -> float:
    headers = getattr(props, "headers", None) or {}
    try:
        return now - float(headers.get(outcomes.H_REFUSED_AT) or now)
    except (TypeError, ValueError):
        return 0.0
