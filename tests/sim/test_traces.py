"""Each real trace, replayed: the sim emits the same event types per object for the same REST
calls, and answers every REST call with the status real Asterisk gave (see replay.py)."""

from __future__ import annotations

import datetime

import pytest

from arimonitor.sim.testing import SimServer
from tests.sim.replay import Driver, Scenario, trace_endpoints
from tests.sim.wsclient import EventStream

UTC = datetime.UTC


def T(clock: str) -> float:
    """Trace time of a phone action: just before the first event it caused."""
    hh, mm, ss = clock.split(":")
    at = datetime.datetime(2026, 11, 24, int(hh), int(mm), tzinfo=UTC).timestamp() + float(ss)
    return at - 0.0005


def reg(resource: str, port: int, qualify: bool = False):
    return lambda c: c.register(resource, "127.0.0.1", port, qualify=qualify)


def unreg(resource: str):
    return lambda c: c.unregister(resource)


def failures() -> Scenario:
    calls: dict[str, str] = {}
    return Scenario("failures", before=[
        reg("1003000", 5074),
        lambda c: c.behaviour("1013020", mode="dead"),
        lambda c: c.behaviour("1013015", mode="busy"),
        lambda c: c.behaviour("1123000", mode="noanswer"),
    ], actions=[
        (T("21:22:34.629"), reg("1013020", 5089)),
        (T("21:22:44.753"), unreg("1013020")),
        (T("21:22:44.865"), reg("1013015", 5083)),
        (T("21:22:45.493"), unreg("1013015")),
        (T("21:22:45.608"), reg("1123000", 5084)),
        (T("21:22:50.737"), unreg("1123000")),
        (T("21:22:50.854"), lambda c: c.call("1003000", "5550486")),
        (T("21:22:51.470"), lambda c: calls.update(hangup=c.call("1013010", "5550000"))),
        (T("21:22:54.476"), lambda c: c.hangup(calls["hangup"], cause=127)),
    ])


SCENARIOS = {
    "registration": lambda: Scenario("registration", actions=[
        (T("21:21:13.798"), reg("1003000", 5071)),
        (T("21:21:14.410"), reg("1013015", 5072)),
        (T("21:21:17.801"), unreg("1003000")),
        (T("21:21:18.453"), unreg("1013015")),
    ]),
    "registration_qualify": lambda: Scenario("registration_qualify", actions=[
        (T("21:21:30.109"), reg("1123010", 5085, qualify=True)),
        (T("21:21:42.110"), lambda c: c.reachable("1123010", False)),
        (T("21:21:45.110"), lambda c: c.reachable("1123010", True)),
        (T("21:21:46.221"), unreg("1123010")),
    ]),
    "registration_endpoint_subscribed": lambda: Scenario(
        "registration_endpoint_subscribed", subscribe_all=False, actions=[
            (T("21:21:22.188"), reg("1003000", 5071)),
            (T("21:21:23.306"), lambda c: c.call("1003000", "200")),
            (T("21:21:25.489"), unreg("1003000")),
        ]),
    "inbound_stasis_call": lambda: Scenario("inbound_stasis_call", before=[reg("1003000", 5074)], actions=[
        (T("21:21:49.846"), lambda c: c.call("1003000", "5551234")),
    ]),
    "originate_click_to_call": lambda: Scenario("originate_click_to_call", before=[
        lambda c: c.behaviour("1013010", answer_after=1.0),
        lambda c: c.behaviour("1123000", answer_after=1.0),
    ], actions=[
        (T("21:22:09.089"), reg("1013010", 5081)),
        (T("21:22:09.201"), reg("1123000", 5082)),
        (T("21:22:17.369"), unreg("1013010")),
        (T("21:22:17.485"), unreg("1123000")),
    ]),
    "failures": failures,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_trace_replay(name: str, apidocs) -> None:
    scenario = SCENARIOS[name]()
    with SimServer(endpoints=trace_endpoints(), time_scale=scenario.time_scale) as sim:
        for step in scenario.before:
            step(sim.control)
        url = sim.ws_url if scenario.subscribe_all else sim.ws_url.replace("&subscribeAll=true", "")
        stream = EventStream(url, sim.user, sim.password)
        try:
            driver = Driver(sim, stream, scenario)
            driver.run()
            problems = driver.differences()
            assert not problems, "\n".join(problems)
            for event in stream.snapshot():
                assert apidocs.check_message(event) == [], event
        finally:
            stream.close()
