"""The consumer process end to end: real RabbitMQ, the fake ARI, a stand-in engine PUB."""

from __future__ import annotations

import json

from arimonitor.clicktocall import outcomes, reasons
from tests.support import eventually, eventually_assert


def test_connected_call_end_to_end(c2c, engine_pub, processes):
    proc = c2c.start_consumer(processes)
    req = c2c.request(caller_id="Portaria <100>", timeout=20, variables={"ORDER": 17})
    c2c.publish(req, correlation_id="corr-1")
    (seen,) = eventually(lambda: c2c.ari.originates(), message="no originate reached ARI")
    assert seen.params == {
        "endpoint": "PJSIP/1013010", "app": "arimonitor", "timeout": "20",
        "appArgs": f"click2call,{req['request_id']},A,101,endpoint,1123000,1,20",
        "channelId": f"c2c-{req['request_id']}-a", "callerId": "Portaria <100>"}
    assert seen.json == {"variables": {"ORDER": "17", "C2C_REQUEST_ID": req["request_id"],
                                       "C2C_CLIENT": "101"}}
    accepted = eventually(lambda: c2c.get_all(c2c.results_queue))
    assert [json.loads(b)["event"] for _, _, b in accepted] == ["accepted"]
    assert accepted[0][0].routing_key == "c2c.accepted.101"

    # The engine reports the call's progress and end; the consumer replies with the final one.
    engine_pub("c2c.connected", {"request_id": req["request_id"], "event": "connected"})
    final = {"request_id": req["request_id"], "client": "101", "event": "final", "final": True,
             "result": "completed", "reason": None, "cause": 16, "cause_txt": "Normal Clearing",
             "duration": 42.0}

    def replied():
        engine_pub("c2c.final", final)  # PUB drops until the SUB joined: resend until seen
        return c2c.get_all(c2c.reply_queue)

    ((_, props, body),) = eventually(replied, timeout=10)
    reply = json.loads(body)
    assert props.correlation_id == "corr-1"
    assert (reply["result"], reply["duration"], reply["cause"]) == ("completed", 42.0, 16)
    results = eventually(lambda: c2c.get_all(c2c.results_queue))
    assert {json.loads(b)["event"] for _, _, b in results} >= {"final"}
    # Acked: after a clean stop, nothing comes back to the queue.
    assert c2c.stop_consumer(proc) == 0
    assert c2c.counts(c2c.topology.queue) == (0, 0)
    assert len(c2c.ari.originates()) == 1


def _refused(c2c, body, **kw) -> tuple[dict, dict]:
    """Publish, then return (reply body, dead-letter headers) for that one message."""
    c2c.publish(body, correlation_id="x", **kw)
    (_, _, reply), = eventually(lambda: c2c.get_all(c2c.reply_queue), timeout=10)
    (_, props, _), = eventually(lambda: c2c.get_all(c2c.topology.dead_letter_queue), timeout=10)
    return json.loads(reply), props.headers


def test_every_refusal_is_dead_lettered_with_its_reason_and_replied(c2c, processes):
    c2c.ari.register("1013015", state="offline")
    c2c.ari.endpoints.pop("1013020")            # configured in our file, unknown to Asterisk
    c2c.ari.endpoints["1203002"] = "online"
    c2c.start_consumer(processes)
    cases = [
        (b"{not json", reasons.MALFORMED),
        (json.dumps({"request_id": "r1", "client": ["101"]}).encode(), reasons.MALFORMED),
        (b'{"request_id": "' + b"x" * 20000 + b'"}', reasons.TOO_LARGE),
        (c2c.request(timeout=9999), reasons.BAD_TIMEOUT),
        (c2c.request(destination="not a number"), reasons.BAD_DESTINATION),
        (c2c.request(client="999"), reasons.UNKNOWN_CLIENT),
        (c2c.request(client="102", origin="1023000"), reasons.INACTIVE_CLIENT),
        (c2c.request(origin="1203000"), reasons.ORIGIN_NOT_OF_CLIENT),
        (c2c.request(origin="1019999"), reasons.UNKNOWN_ORIGIN),
        (c2c.request(origin="1013015"), reasons.ORIGIN_OFFLINE),
        (c2c.request(origin="1013020"), reasons.ORIGIN_OFFLINE),
    ]
    for body, reason in cases:
        reply, headers = _refused(c2c, body)
        assert (reply["result"], reply["reason"]) == ("refused", reason), body[:80]
        assert headers[outcomes.H_REASON] == reason
        assert headers[outcomes.H_REASON_TEXT].startswith(reasons.describe(reason))
    # A message without reply_to is still dead-lettered.
    c2c.publish(b"[]", reply=False)
    (_, props, _), = eventually(lambda: c2c.get_all(c2c.topology.dead_letter_queue))
    assert props.headers[outcomes.H_REASON] == reasons.MALFORMED
    assert c2c.ari.originates() == []


def test_a_request_stamped_long_ago_is_refused_as_expired_and_never_rings(c2c, processes):
    import time

    c2c.start_consumer(processes, ARIMONITOR_CLICKTOCALL_MAX_WAIT="2m")
    reply, headers = _refused(c2c, c2c.request("old-one"), timestamp=int(time.time()) - 3600)
    assert (reply["result"], reply["reason"]) == ("refused", reasons.EXPIRED)
    assert headers[outcomes.H_REASON] == reasons.EXPIRED
    assert c2c.ari.originates() == []
    # a fresh stamp goes through
    c2c.publish(c2c.request("new-one"), timestamp=int(time.time()))
    eventually(lambda: c2c.ari.originates("c2c-new-one-a"), timeout=10)


def test_allocation_failed_and_call_limit(c2c, processes):
    c2c.start_consumer(processes)
    # Online a moment ago, gone now: ARI answers 500 "Allocation failed" and sends no event.
    c2c.ari.fail_alloc.add("1013010")
    reply, headers = _refused(c2c, c2c.request(origin="1013010"))
    assert (reply["reason"], headers[outcomes.H_REASON]) == (reasons.ORIGIN_UNREACHABLE,) * 2
    # Client 120 may have 2 calls up: the third is refused.
    for origin in ("1203000", "1203001"):
        c2c.publish(c2c.request(client="120", origin=origin))
    eventually(lambda: len(c2c.ari.channels) == 2)
    reply, headers = _refused(c2c, c2c.request(client="120", origin="1203002"))
    assert reply["reason"] == reasons.CALL_LIMIT == headers[outcomes.H_REASON]


def test_asterisk_down_then_up(c2c, processes):
    c2c.start_consumer(processes)
    c2c.ari.stop()
    ids = [c2c.request(origin=f"90000{i:02d}", client="900")["request_id"] for i in range(5)]
    for i, rid in enumerate(ids):
        c2c.publish(c2c.request(rid, origin=f"90000{i:02d}", client="900"))
    # They wait in the retry path (not acked until the retry copy is confirmed).
    eventually(lambda: "retry 2 in" in c2c.log_text(), timeout=10)
    c2c.ari.fail_next = 3  # and a few 503s when it comes back: retried too
    c2c.ari.start()
    eventually_assert(lambda: _assert_channels(c2c, ids), timeout=15)
    assert c2c.get_all(c2c.topology.dead_letter_queue) == []


def _assert_channels(c2c, ids):
    assert sorted(c2c.ari.channels) == sorted(f"c2c-{rid}-a" for rid in ids)
