"""`<queue>.dead` is trimmed to its length and age limits, oldest first, and the drops counted."""

from __future__ import annotations

import json
import time

import pika

from arimonitor.clicktocall import deadletters, outcomes
from tests.support import eventually


def _dead(c2c, n: int, refused_at: float) -> None:
    for i in range(n):
        c2c.channel.basic_publish(
            c2c.topology.dead_letter_exchange, c2c.topology.queue, json.dumps({"n": i}).encode(),
            pika.BasicProperties(headers={outcomes.H_REFUSED_AT: int(refused_at)}))


def test_trim_drops_the_oldest_beyond_the_length_and_age_limits(c2c):
    dead = c2c.topology.dead_letter_queue
    _dead(c2c, 5, time.time() - 3600)  # an hour old
    _dead(c2c, 10, time.time())
    eventually(lambda: c2c.counts(dead)[0] == 15)
    assert deadletters.trim(c2c.channel, dead, max_length=12, max_age=86400) == 3
    assert deadletters.trim(c2c.channel, dead, max_length=12, max_age=600) == 2
    assert deadletters.trim(c2c.channel, dead, max_length=12, max_age=600) == 0
    left = [json.loads(b)["n"] for _, _, b in c2c.get_all(dead)]
    assert left == list(range(10)), "the newest ten stay, in order"


def test_the_consumer_keeps_the_dead_letter_queue_bounded_and_counts(c2c, processes):
    dead = c2c.topology.dead_letter_queue
    _dead(c2c, 8, time.time())
    eventually(lambda: c2c.counts(dead)[0] == 8)
    c2c.start_consumer(processes, ARIMONITOR_CLICKTOCALL_DEAD_LETTER_MAX="5")
    eventually(lambda: c2c.counts(dead)[0] == 5, timeout=10)
    eventually(lambda: "3 oldest dead letter(s) dropped" in c2c.log_text(), timeout=5)
