"""Replies through the real consumer process: one per request message, the results exchange's
routing keys, and finals the PUB missed caught up from the engine's store."""

from __future__ import annotations

import json
import signal
import threading

import zmq

from arimonitor import protocol
from tests.support import eventually


def _final(rid: str, client: str = "101") -> dict:
    return {"request_id": rid, "client": client, "event": "final", "final": True,
            "result": "completed", "reason": None, "cause": 16, "duration": 7.0}


def test_the_same_request_id_twice_back_to_back_gets_two_replies(c2c, engine_pub, processes):
    c2c.start_consumer(processes)
    req = c2c.request(timeout=30)
    c2c.publish(req, correlation_id="first")
    c2c.publish(req, correlation_id="second")
    eventually(lambda: c2c.ari.originates(), message="no originate reached ARI")

    def replies():
        engine_pub("c2c.final", _final(req["request_id"]))  # PUB drops until the SUB joined
        got = c2c.get_all(c2c.reply_queue)
        replies.seen += got
        return len(replies.seen) >= 2
    replies.seen = []
    eventually(replies, timeout=15, message="each request message wants its own reply")
    # Later finals (the engine resending) bring no third reply.
    for _ in range(5):
        engine_pub("c2c.final", _final(req["request_id"]))
    c2c.channel.connection.sleep(1.0)
    replies.seen += c2c.get_all(c2c.reply_queue)
    assert sorted(p.correlation_id for _, p, _ in replies.seen) == ["first", "second"]
    ids = {p.message_id for _, p, _ in replies.seen}
    assert len(ids) == 2 and all(i.startswith(f"{req['request_id']}.final.") for i in ids)
    assert len(c2c.ari.originates(f"c2c-{req['request_id']}-a")) <= 2  # the second got a 409
    assert len(c2c.ari.channels) == 1


def test_results_exchange_gets_each_event_once_under_its_client(c2c, engine_pub, processes):
    c2c.start_consumer(processes)
    req = c2c.request()
    rid = req["request_id"]
    c2c.publish(req, correlation_id="c")
    eventually(lambda: c2c.ari.originates(), message="no originate reached ARI")

    def ringing_seen():
        # The engine knows no client before StasisStart: it publishes accepted and
        # origin_ringing with client "".
        engine_pub("c2c.accepted", {"request_id": rid, "client": "", "event": "accepted"})
        engine_pub("c2c.origin_ringing", {"request_id": rid, "client": "", "event": "origin_ringing"})
        got = c2c.get_all(c2c.results_queue)
        ringing_seen.keys += [m.routing_key for m, _, _ in got]
        return "c2c.origin_ringing.101" in ringing_seen.keys
    ringing_seen.keys = []
    eventually(ringing_seen, timeout=10)
    c2c.channel.connection.sleep(0.5)
    ringing_seen.keys += [m.routing_key for m, _, _ in c2c.get_all(c2c.results_queue)]
    assert ringing_seen.keys.count("c2c.accepted.101") == 1, ringing_seen.keys
    assert not any(k.endswith((".unknown", ".")) for k in ringing_seen.keys)


class StandInEngine:
    """The engine's control ROUTER: answers `_report`, and `_c2c_finals` from `finals`."""

    def __init__(self, address: str) -> None:
        self.finals: dict[str, dict] = {}
        self.asked: list[list[str]] = []
        self._stop = threading.Event()
        self._sock = zmq.Context.instance().socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.bind(address)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._sock.poll(100):
                continue
            *envelope, body = self._sock.recv_multipart()
            req = protocol.loads(body)
            data = None
            if req["cmd"] == "_c2c_finals":
                ids = json.loads(req["args"][0])
                self.asked.append(ids)
                data = {"finals": [self.finals[i] for i in ids if i in self.finals]}
            self._sock.send_multipart([*envelope, protocol.dumps(protocol.ok(req["id"], data))])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close(0)


def test_finals_missed_while_the_consumer_was_down_reach_reply_to_and_free_the_slots(
        c2c, processes):
    """The issue's reproduction: client 120 (max_chamadas 2), two calls up, the consumer killed
    -9, both hung up (finals published to nobody), the consumer back: both replies come, and a
    third request is placed, not refused call_limit."""
    engine = StandInEngine(f"ipc://{c2c.tmp}/control.sock")
    try:
        env = {"ARIMONITOR_ZMQ_CONTROL": f"ipc://{c2c.tmp}/control.sock"}
        proc = c2c.start_consumer(processes, **env)
        reqs = [c2c.request(client="120", origin=o, timeout=60) for o in ("1203000", "1203001")]
        for i, req in enumerate(reqs):
            c2c.publish(req, correlation_id=f"call-{i}")
        eventually(lambda: len(c2c.ari.channels) == 2)
        c2c.stop_consumer(proc, signal.SIGKILL)
        for req in reqs:  # ended while no consumer listened: only the engine's store has them
            engine.finals[req["request_id"]] = _final(req["request_id"], "120")
        c2c.start_consumer(processes, **env)
        replies = []
        eventually(lambda: replies.extend(c2c.get_all(c2c.reply_queue)) or len(replies) >= 2,
                   timeout=20, message="the finals were never caught up")
        assert sorted(p.correlation_id for _, p, _ in replies) == ["call-0", "call-1"]
        assert {json.loads(b)["result"] for _, _, b in replies} == {"completed"}
        c2c.ari.hangup_all()
        third = c2c.request(client="120", origin="1203002")
        c2c.publish(third, correlation_id="third")
        eventually(lambda: c2c.ari.originates(f"c2c-{third['request_id']}-a"), timeout=10,
                   message="the slots were never freed")
    finally:
        engine.close()
