"""Placer + Ledger against the fake ARI: every verdict of an originate answer."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from arimonitor.clicktocall import ledger as L
from arimonitor.clicktocall import placer as P
from arimonitor.clicktocall import reasons
from arimonitor.clicktocall.ari_http import LeanAri as AriRest
from arimonitor.clicktocall.request import parse_request
from arimonitor.v27 import parse_clients, parse_endpoints
from tests.clicktocall.conftest import CLIENTS, endpoints_file
from tests.clicktocall.fake_ari import FakeAri

TABLES = SimpleNamespace(clients=parse_clients(CLIENTS.encode()).table,
                         endpoints=parse_endpoints(endpoints_file().encode()).table)


@pytest.fixture
def world(tmp_path):
    ari = FakeAri(password="pw").start()
    ari.register("1013010", "1203000", "1203001", "1203002")
    ledger = L.Ledger(tmp_path / "ledger.sqlite")
    placer = P.Placer(P.PlacerSettings(app="arimonitor"), lambda: TABLES, ledger,
                      lambda: AriRest(ari.url, "arimonitor", "pw", 2.0), logging.getLogger("t"))
    yield SimpleNamespace(ari=ari, ledger=ledger, placer=placer, tmp=tmp_path)
    ari.stop()
    ledger.close()


def req(rid="r1", **kw):
    import json
    body = {"request_id": rid, "client": "101", "origin": "1013010", "destination": "1123000", **kw}
    return parse_request(json.dumps(body).encode())


def test_accept_then_duplicate_from_the_ledger(world):
    assert world.placer.place(req()).kind == P.ACCEPTED
    assert world.placer.place(req()).kind == P.DUPLICATE
    assert len(world.ari.originates()) == 1


def test_409_is_a_duplicate_even_without_the_ledger(world):
    assert world.placer.place(req()).kind == P.ACCEPTED
    fresh = P.Placer(world.placer.settings, lambda: TABLES, L.Ledger(world.tmp / "other.sqlite"),
                     lambda: AriRest(world.ari.url, "arimonitor", "pw", 2.0), logging.getLogger("t"))
    assert fresh.place(req()).kind == P.DUPLICATE
    assert len(world.ari.channels) == 1


def test_unavailable_and_5xx_retry_and_do_not_count(world):
    world.ari.fail_next = 1
    decision = world.placer.place(req())
    assert (decision.kind, decision.error) == (P.RETRY, "HTTP 503")
    assert world.ledger.live_calls("101") == 0
    assert world.placer.place(req()).kind == P.ACCEPTED  # the retry resumes the same row
    world.ari.stop()
    world.placer._online.clear()
    decision = world.placer.place(req("r2"))
    assert decision.kind == P.RETRY and "unavailable" in decision.error


def test_wrong_ari_password_is_retried_not_refused(world):
    bad = P.Placer(world.placer.settings, lambda: TABLES, world.ledger,
                   lambda: AriRest(world.ari.url, "arimonitor", "wrong", 2.0), logging.getLogger("t"))
    assert bad.place(req()).kind == P.RETRY


def test_allocation_failed_is_origin_unreachable(world):
    world.ari.fail_alloc.add("1013010")
    decision = world.placer.place(req())
    assert (decision.kind, decision.refusal.reason) == (P.REFUSED, reasons.ORIGIN_UNREACHABLE)


def test_call_limit_counts_live_calls_and_final_frees_them(world):
    for i, origin in enumerate(("1203000", "1203001")):
        assert world.placer.place(req(f"l{i}", client="120", origin=origin)).kind == P.ACCEPTED
    decision = world.placer.place(req("l2", client="120", origin="1203002"))
    assert decision.refusal.reason == reasons.CALL_LIMIT
    world.ledger.finish("l0", {"result": "completed", "event": "final"})
    assert world.placer.place(req("l3", client="120", origin="1203002")).kind == P.ACCEPTED


def test_same_id_other_client_is_refused_and_refused_ids_may_retry(world):
    assert world.placer.place(req("same")).kind == P.ACCEPTED
    decision = world.placer.place(req("same", client="120", origin="1203000"))
    assert decision.refusal.reason == reasons.DUPLICATE_REQUEST_ID
    world.ari.register("1013010", state="offline")
    world.placer._online.clear()  # "online" is trusted for ONLINE_CACHE seconds
    refused = world.placer.place(req("again"))
    assert refused.refusal.reason == reasons.ORIGIN_OFFLINE
    world.ledger.finish("again", {"result": "refused", "event": "final"},
                        L.Route("again", "101", None, None))
    world.ari.register("1013010")
    world.placer._online.clear()
    assert world.placer.place(req("again")).kind == P.ACCEPTED


def test_a_request_that_waited_too_long_is_refused_but_a_late_redelivery_stays_a_duplicate(world):
    import dataclasses
    import time

    placer = P.Placer(P.PlacerSettings(app="arimonitor", max_wait=300), lambda: TABLES, world.ledger,
                      lambda: AriRest(world.ari.url, "arimonitor", "pw", 2.0), logging.getLogger("t"))
    fresh = dataclasses.replace(req("fresh"), queued_at=time.time() - 10)
    assert placer.place(fresh).kind == P.ACCEPTED
    stale = dataclasses.replace(req("stale"), queued_at=time.time() - 3600)
    decision = placer.place(stale)
    assert decision.kind == P.REFUSED and decision.refusal.reason == reasons.EXPIRED
    assert "waited 3600 s" in decision.refusal.text
    assert [o.params["channelId"] for o in world.ari.originates()] == ["c2c-fresh-a"]
    # the call placed a minute ago, redelivered an hour late: still the same call, not a refusal
    late = dataclasses.replace(req("fresh"), queued_at=time.time() - 3600)
    assert placer.place(late).kind == P.DUPLICATE
    # unstamped requests have no age to judge
    assert placer.place(req("unstamped")).kind == P.ACCEPTED


# ---- several Asterisk servers: the origin's server gets the call ----------------------------

@pytest.fixture
def two(tmp_path):
    """Two fake Asterisks, pbx1 (app `app1`) and pbx2 (app `app2`), in that config order."""
    aris = [FakeAri(password="pw").start(), FakeAri(password="pw").start()]
    ledger = L.Ledger(tmp_path / "ledger.sqlite")
    now = [0.0]
    servers = [P.AriServer(f"pbx{n}", f"app{n}",
                           lambda ari=ari: AriRest(ari.url, "arimonitor", "pw", 2.0))
               for n, ari in enumerate(aris, 1)]
    placer = P.Placer(P.PlacerSettings(app="unused"), lambda: TABLES, ledger, servers,
                      logging.getLogger("t.two"), clock=lambda: now[0])
    yield SimpleNamespace(aris=aris, ledger=ledger, placer=placer, now=now)
    for ari in aris:
        ari.stop()
    ledger.close()


def test_the_call_goes_to_the_server_where_the_origin_is_online(two):
    pbx1, pbx2 = two.aris
    pbx1.register("1013010", state="offline")
    pbx2.register("1013010")
    decision = two.placer.place(req())
    assert (decision.kind, decision.server) == (P.ACCEPTED, "pbx2")
    assert pbx1.originates() == []
    (placed,) = pbx2.originates()
    assert (placed.params["endpoint"], placed.params["app"]) == ("PJSIP/1013010", "app2")
    assert two.ledger.get("r1")["server"] == "pbx2"


def test_an_origin_online_on_no_server_is_refused_offline_naming_each(two):
    two.aris[0].register("1013010", state="offline")  # pbx2 does not know it at all (404)
    decision = two.placer.place(req())
    assert (decision.kind, decision.refusal.reason) == (P.REFUSED, reasons.ORIGIN_OFFLINE)
    assert "pbx1: offline" in decision.refusal.text and "pbx2: not configured" in decision.refusal.text
    assert two.aris[0].originates() == two.aris[1].originates() == []


def test_online_on_two_servers_goes_to_the_first_warned_once_and_counted(two, caplog):
    for ari in two.aris:
        ari.register("1013010")
    with caplog.at_level(logging.WARNING, logger="t.two"):
        first = two.placer.place(req("r1"))
        two.now[0] += P.ONLINE_CACHE + 1  # asked again, not from the cache
        second = two.placer.place(req("r2"))
    assert (first.server, second.server) == ("pbx1", "pbx1")
    assert len(two.aris[0].originates()) == 2 and two.aris[1].originates() == []
    assert two.placer.counters["origin_on_two_servers"] == 2
    warnings = [r for r in caplog.records if "online on 2 servers" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "pbx1, pbx2" in warnings[0].getMessage()


def test_a_server_down_does_not_stop_a_call_whose_origin_is_online_on_another(two):
    pbx1, pbx2 = two.aris
    pbx2.register("1013010")
    pbx1.stop()
    decision = two.placer.place(req("r1"))
    assert (decision.kind, decision.server) == (P.ACCEPTED, "pbx2")
    # online nowhere that answers, and one server silent: it may be there, so retry
    pbx2.register("1013010", state="offline")
    two.now[0] += P.ONLINE_CACHE + 1
    decision = two.placer.place(req("r2"))
    assert decision.kind == P.RETRY
    assert two.ledger.live_calls("101") == 1  # r2 does not hold a slot while it waits
