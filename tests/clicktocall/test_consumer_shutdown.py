"""SIGTERM during work, and the cap on retries: through the real consumer process."""

from __future__ import annotations

import collections
import json
import re
import signal
import subprocess
import time

from arimonitor.clicktocall import outcomes, reasons
from arimonitor.clicktocall.consumer import DRAIN_TIMEOUT
from arimonitor.clicktocall.process import WORKERS
from tests.support import eventually

STOPWAITSECS = 20  # supervisord.conf [program:clicktocall]


def test_sigterm_mid_flood_finishes_in_flight_and_requeues_the_rest(c2c, processes):
    # No bet on the machine's speed: after `hold` originates the fake ARI holds each worker's
    # originate unanswered, so SIGTERM lands with WORKERS in flight and the rest of the
    # prefetch window not started, and only then (once the drain began) lets them finish.
    total, hold, prefetch = 600, 100, 50
    c2c.ari.hold_after = hold
    for i in range(total):
        c2c.publish(c2c.request(f"term-{i:04d}", client="900", origin=f"90000{i % 20:02d}"),
                    reply=False)
    # the held originates must not time out on the consumer's side while the test looks on
    proc = c2c.start_consumer(processes, ARIMONITOR_CLICKTOCALL_PREFETCH=str(prefetch),
                              ARIMONITOR_ARI_REST_TIMEOUT="120s")
    # every worker held, and the broker refilled the prefetch window behind them
    eventually(lambda: c2c.ari.held == WORKERS
               and c2c.counts(c2c.topology.queue)[0] == total - hold - prefetch, timeout=60)
    proc.send_signal(signal.SIGTERM)
    eventually(lambda: "draining:" in c2c.log_text(), timeout=30)
    c2c.ari.release()
    released = time.monotonic()
    try:
        code = proc.wait(STOPWAITSECS)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {STOPWAITSECS} s after SIGTERM") from None
    assert code == 0, c2c.log_text()[-2000:]
    # it ended because its in-flight work was done, not because the drain gave up waiting
    assert "still in flight after" not in c2c.log_text()
    assert time.monotonic() - released < DRAIN_TIMEOUT
    placed = set(c2c.ari.channels)
    asked = collections.Counter(s.params["channelId"] for s in c2c.ari.originates())
    assert max(asked.values()) == 1, "an originate was sent twice"
    # the first `hold`, then the ones in flight at SIGTERM; nothing not started went on
    assert len(placed) == hold + WORKERS
    # Nothing lost: every message is placed (and acked) or back on the queue, never both.
    eventually(lambda: c2c.counts(c2c.topology.queue) == (total - len(placed), 0))
    assert c2c.counts(c2c.topology.dead_letter_queue)[0] == 0
    assert c2c.counts(c2c.topology.retry_queue)[0] == 0

    c2c.start_consumer(processes)
    eventually(lambda: len(c2c.ari.channels) == total, timeout=20)
    eventually(lambda: c2c.counts(c2c.topology.queue)[0] == 0)
    asked = collections.Counter(s.params["channelId"] for s in c2c.ari.originates())
    assert sorted(asked) == sorted(f"c2c-term-{i:04d}-a" for i in range(total))
    assert set(asked.values()) == {1}
    # Every placed message had been acked before the exit: none came back as a duplicate.
    log = c2c.log_text()
    assert "duplicate (already placed)" not in log
    drained = re.search(r"draining: (\d+) never started, requeued; waiting for (\d+) in flight", log)
    assert drained and (int(drained[1]), int(drained[2])) == (prefetch - WORKERS, WORKERS), drained


def test_retries_stop_at_max_attempts_with_a_failed_outcome(c2c, processes):
    c2c.ari.fail_next = 10_000  # Asterisk answers 503 to every originate
    c2c.start_consumer(processes, ARIMONITOR_CLICKTOCALL_MAX_ATTEMPTS="3")
    req = c2c.request()
    c2c.publish(req, correlation_id="corr-1")
    (_method, props, body), = eventually(lambda: c2c.get_all(c2c.reply_queue), timeout=10)
    reply = json.loads(body)
    assert props.correlation_id == "corr-1"
    assert (reply["event"], reply["result"], reply["reason"]) == (
        "final", "failed", reasons.RETRIES_EXHAUSTED)
    assert reply["text"].startswith("Asterisk unreachable, retries exhausted: 3 attempt(s)")
    assert (reply["origin"], reply["destination"]) == ("1013010", "1123000")
    assert len(c2c.ari.originates()) == 3
    (_, dead_props, dead_body), = eventually(lambda: c2c.get_all(c2c.topology.dead_letter_queue))
    assert json.loads(dead_body) == req
    headers = dead_props.headers
    assert headers[outcomes.H_REASON] == reasons.RETRIES_EXHAUSTED
    assert headers[outcomes.H_ATTEMPTS] == 2 and headers[outcomes.H_LAST_ERROR] == "HTTP 503"
    assert c2c.counts(c2c.topology.queue)[0] == 0 and c2c.counts(c2c.topology.retry_queue)[0] == 0

    # Never placed: the same request sent again once Asterisk is back goes through.
    c2c.ari.fail_next = 0
    c2c.publish(req, correlation_id="corr-2")
    eventually(lambda: f"c2c-{req['request_id']}-a" in c2c.ari.channels)


def test_retry_state_counts_attempts_and_keeps_the_first_time():
    import pika

    props, attempts = outcomes.retry_properties(pika.BasicProperties(headers={"k": "v"}),
                                                "HTTP 503", 5.0)
    assert attempts == 1 and props.headers["k"] == "v" and props.expiration == "5000"
    first = props.headers[outcomes.H_FIRST_TRY]
    assert abs(first - time.time()) < 2
    again, attempts = outcomes.retry_properties(props, "timeout", 5.0)
    assert attempts == 2 and again.headers[outcomes.H_FIRST_TRY] == first
    assert outcomes.retry_state(again, now=first + 700) == (3, first)
