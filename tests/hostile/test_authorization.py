"""Who may publish what: the policy alone, then through the real consumer and RabbitMQ."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pika
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arimonitor.clicktocall import reasons
from arimonitor.clicktocall.authorize import Policy, caller_id_allowed, parse_map
from arimonitor.clicktocall.request import parse_request
from tests.support import eventually


@dataclass(frozen=True)
class Client:
    name: str


@dataclass(frozen=True)
class Endpoint:
    client: str


ENDPOINTS = {"1013010": Endpoint("101"), "1013015": Endpoint("101"), "1123000": Endpoint("112")}
SETTINGS = {"clicktocall.publishers": "", "clicktocall.trunk_numbers": "",
            "clicktocall.cross_client": "", "clicktocall.free_caller_id": ""}


def policy(**kw) -> Policy:
    return Policy.from_config({**SETTINGS, **{f"clicktocall.{k}": v for k, v in kw.items()}})


def req(destination="1013015", client="101", **fields):
    body = {"request_id": "r1", "client": client, "origin": "1013010",
            "destination": destination, **fields}
    return parse_request(json.dumps(body).encode())


def verdict(pol: Policy, request, publisher=None, name="Residencial São João"):
    refusal = pol.check(request, publisher, Client(name), ENDPOINTS)
    return None if refusal is None else (refusal.reason, refusal.text)


def test_the_default_policy_rings_only_the_clients_own_endpoints():
    pol = policy()
    assert verdict(pol, req()) is None
    assert verdict(pol, req("1123000"))[0] == reasons.NOT_AUTHORIZED      # another client's
    assert verdict(pol, req("000"))[0] == reasons.NOT_AUTHORIZED          # any number
    assert verdict(pol, req("+" + "9" * 20))[0] == reasons.NOT_AUTHORIZED
    assert verdict(pol, req(caller_id='"Policia Federal" <190>'))[0] == reasons.NOT_AUTHORIZED
    assert verdict(pol, req(caller_id="1013010")) is None
    assert verdict(pol, req(caller_id='"Residencial São João" <1013010>')) is None


def test_configured_rights():
    pol = policy(trunk_numbers="101: 0800[0-9]{7}", cross_client="101",
                 free_caller_id="120", publishers="web1: 101; ops: *")
    assert verdict(pol, req("08001234567"), "web1") is None
    assert verdict(pol, req("0800123456"), "web1")[0] == reasons.NOT_AUTHORIZED
    assert verdict(pol, req("1123000"), "web1") is None                     # cross_client
    assert verdict(pol, req(client="120"), "web1")[1].endswith(
        "user 'web1' may not act for client 120")
    # ops may act for 120, and 120 may not ring 101's endpoint: the next check says so
    assert verdict(pol, req(client="120"), "ops")[1].endswith("an endpoint of another client")
    assert "without user_id" in verdict(pol, req(), None)[1]
    assert "may act for no client" in verdict(pol, req(), "intruder")[1]


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="clicktocall.trunk_numbers: 101: bad pattern"):
        policy(trunk_numbers="101: [0-9")
    with pytest.raises(ValueError, match="clicktocall.publishers"):
        parse_map("web1 101", "publishers")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_a_caller_id_passes_only_as_digits_or_the_own_name(text):
    if caller_id_allowed(text, "Solar"):
        stripped = text.strip().strip('"')
        assert (stripped == "Solar" or stripped.lstrip("+").isdigit() and stripped.isascii()
                or "<" in text), text
        assert "Policia" not in text


@settings(max_examples=200, deadline=None)
@given(number=st.from_regex(r"\+?[0-9]{3,20}", fullmatch=True))
def test_no_number_passes_the_default_policy(number):
    parsed = req(number)
    if hasattr(parsed, "destination") and parsed.destination not in ENDPOINTS:
        assert verdict(policy(), parsed)[0] == reasons.NOT_AUTHORIZED


def test_the_consumer_binds_requests_to_their_rabbitmq_user(c2c, processes):
    c2c.start_consumer(processes, ARIMONITOR_CLICKTOCALL_PUBLISHERS="guest: 120")

    def send(body, user_id):
        c2c.channel.basic_publish("", c2c.topology.queue, json.dumps(body).encode(),
                                  pika.BasicProperties(reply_to=c2c.reply_queue, user_id=user_id,
                                                       correlation_id=body["request_id"]))

    ours = c2c.request(client="120", origin="1203000", destination="1203001")
    send(ours, "guest")
    send(c2c.request(), "guest")          # client 101: guest may act only for 120
    send(c2c.request(client="120", origin="1203001", destination="1203000"), None)
    replies = []
    eventually(lambda: replies.extend(c2c.get_all(c2c.reply_queue)) or len(replies) >= 2,
               timeout=10)
    refused = {json.loads(b)["reason"] for _, _, b in replies}
    assert refused == {reasons.NOT_AUTHORIZED}
    eventually(lambda: c2c.ari.originates(f"c2c-{ours['request_id']}-a"), timeout=10)
    assert len(c2c.ari.originates()) == 1
    # RabbitMQ itself refuses a user_id that is not the connection's user.
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        send(c2c.request(client="120", origin="1203000"), "webapp-of-someone-else")
        c2c.channel.basic_qos(prefetch_count=1)  # a round trip: the broker's verdict arrives
    assert closed.value.reply_code == 406
