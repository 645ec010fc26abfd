"""parse_request / check_tables: every refusal, and garbage never crashes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arimonitor.clicktocall import reasons
from arimonitor.clicktocall.request import (
    ClickToCallRequest,
    Limits,
    Refusal,
    check_tables,
    destination_kind,
    parse_channel_id,
    parse_request,
    should_record,
)


@dataclass(frozen=True)
class C:
    active: bool = True
    max_calls: int | None = 2
    record: bool | None = None


@dataclass(frozen=True)
class E:
    client: str


CLIENTS = MappingProxyType({"101": C(record=True), "102": C(active=False), "103": C()})
ENDPOINTS = MappingProxyType({"1013010": E("101"), "1123000": E("112"), "1033000": E("103")})

GOOD = {"request_id": "8a6f2c1e-5d1b-4c3e-9f00-0a1b2c3d4e5f", "client": "101", "origin": "1013010",
        "destination": "1123000"}


def parse(obj, **kw):
    return parse_request(json.dumps(obj).encode(), **kw)


def test_a_good_request_has_defaults_and_channel_ids():
    req = parse(GOOD, reply_to="amq.gen-x", correlation_id="c1", limits=Limits(default_timeout=25))
    assert isinstance(req, ClickToCallRequest)
    assert (req.timeout, req.record, req.caller_id, dict(req.variables)) == (25.0, None, None, {})
    assert (req.reply_to, req.correlation_id) == ("amq.gen-x", "c1")
    assert req.origin_channel_id == "c2c-8a6f2c1e-5d1b-4c3e-9f00-0a1b2c3d4e5f-a"
    assert parse_channel_id(req.origin_channel_id) == (GOOD["request_id"], "a")
    assert parse_channel_id(req.destination_channel_id) == (GOOD["request_id"], "b")
    assert parse_channel_id("1795555370.24") is None
    assert check_tables(req, CLIENTS, ENDPOINTS) is None


def test_numbers_and_options_are_accepted():
    req = parse({**GOOD, "client": 101, "origin": 1013010, "destination": "+5511987654321",
                 "timeout": 12.5, "record": False, "caller_id": "Portaria <100>",
                 "variables": {"ORDER": 17, "NOTE": "entrega"}})
    assert isinstance(req, ClickToCallRequest)
    assert (req.client, req.origin, req.destination) == ("101", "1013010", "+5511987654321")
    assert dict(req.variables) == {"ORDER": "17", "NOTE": "entrega"}
    assert destination_kind(req, ENDPOINTS) == "number"
    assert check_tables(req, CLIENTS, ENDPOINTS) is None


@pytest.mark.parametrize("body, reason", [
    (b"not json", reasons.MALFORMED),
    (b"\xff\xfe", reasons.MALFORMED),
    (b"[1, 2]", reasons.MALFORMED),
    (b"x" * 20000, reasons.TOO_LARGE),
])
def test_poison_bodies(body, reason):
    refusal = parse_request(body)
    assert isinstance(refusal, Refusal) and refusal.reason == reason


@pytest.mark.parametrize("change, reason", [
    ({"request_id": None}, reasons.BAD_REQUEST_ID),
    ({"request_id": 42}, reasons.BAD_REQUEST_ID),
    ({"request_id": "a,b"}, reasons.BAD_REQUEST_ID),
    ({"request_id": "x" * 65}, reasons.BAD_REQUEST_ID),
    ({"client": None}, reasons.MALFORMED),
    ({"client": True}, reasons.MALFORMED),
    ({"origin": ["1013010"]}, reasons.MALFORMED),
    ({"origin": "PJSIP/1013010"}, reasons.MALFORMED),
    ({"destination": "12 34"}, reasons.BAD_DESTINATION),
    ({"destination": "+12"}, reasons.BAD_DESTINATION),
    ({"timeout": "30"}, reasons.BAD_TIMEOUT),
    ({"timeout": True}, reasons.BAD_TIMEOUT),
    ({"timeout": 0}, reasons.BAD_TIMEOUT),
    ({"timeout": 121}, reasons.BAD_TIMEOUT),
    ({"record": "S"}, reasons.MALFORMED),
    ({"caller_id": "a\nb"}, reasons.BAD_CALLER_ID),
    ({"caller_id": 5}, reasons.BAD_CALLER_ID),
    ({"variables": []}, reasons.BAD_VARIABLES),
    ({"variables": {"1BAD": "x"}}, reasons.BAD_VARIABLES),
    ({"variables": {"C2C_REQUEST": "x"}}, reasons.BAD_VARIABLES),
    ({"variables": {"X": {"nested": 1}}}, reasons.BAD_VARIABLES),
    ({"variables": {f"V{i}": "x" for i in range(40)}}, reasons.BAD_VARIABLES),
])
def test_each_field_refusal(change, reason):
    refusal = parse({**GOOD, **change})
    assert isinstance(refusal, Refusal), refusal
    assert refusal.reason == reason
    assert refusal.text.startswith(reasons.describe(reason))


@pytest.mark.parametrize("change, reason", [
    ({"client": "999"}, reasons.UNKNOWN_CLIENT),
    ({"client": "102"}, reasons.INACTIVE_CLIENT),
    ({"origin": "1019999"}, reasons.UNKNOWN_ORIGIN),
    ({"origin": "1033000"}, reasons.ORIGIN_NOT_OF_CLIENT),
    ({"destination": "sales"}, reasons.BAD_DESTINATION),
])
def test_table_refusals(change, reason):
    req = parse({**GOOD, **change})
    assert isinstance(req, ClickToCallRequest)
    refusal = check_tables(req, CLIENTS, ENDPOINTS)
    assert refusal is not None and refusal.reason == reason


def test_record_policy_request_then_client_then_default():
    req = parse(GOOD)
    assert should_record(req, CLIENTS["101"], default=False) is True
    assert should_record(req, CLIENTS["103"], default=False) is False
    assert should_record(req, CLIENTS["103"], default=True) is True
    assert should_record(parse({**GOOD, "record": False}), CLIENTS["101"], default=True) is False


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(body):
    assert isinstance(parse_request(body), (Refusal, ClickToCallRequest))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(GOOD) + ["timeout", "record", "caller_id", "variables"]),
                       json_values))
def test_random_fields_never_crash_and_accepted_ones_are_sane(fields):
    result = parse({**GOOD, **fields})
    assert isinstance(result, (Refusal, ClickToCallRequest))
    if isinstance(result, ClickToCallRequest):
        assert parse_channel_id(result.origin_channel_id) == (result.request_id, "a")
        assert 1 <= result.timeout <= 120
        assert all(isinstance(v, str) for v in result.variables.values())
        check_tables(result, CLIENTS, ENDPOINTS)  # must not raise either
