"""The REST probe reads any non-200 as a problem with its status and reason (issue 16).

During `core restart now` a real Asterisk 22 answers 503 "Shutdown in progress" (its HTML
page) for about a second while the WebSocket stays up, then refuses connections, then answers
503 {"message": "Asterisk not booted"}; the simulator's restart phases replay that.
"""

from __future__ import annotations

import socket

import pytest

from arimonitor.ari.rest import AriRest
from arimonitor.engine import probe as P
from arimonitor.engine.probe import Probe, ProbeStats
from arimonitor.sim.testing import SimServer
from tests.engine.stack import control_address, ctl, start_stack, write_config
from tests.support import eventually

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def sim():
    with SimServer(endpoints=["1013010"], time_scale=0.2) as server:
        yield server


def _probe(rest: AriRest) -> list[tuple]:
    found: list[tuple] = []
    Probe(rest, lambda: 1.0, lambda *a: found.append(a), lambda: 1.0).probe_once()
    return found


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when we return: nothing listens


def test_each_way_rest_can_fail_is_named_with_its_status_and_reason(sim):
    rest = AriRest(sim.url, sim.user, sim.password, timeout=1.0)
    ((ok, *_rest, kind, reason),) = _probe(rest)
    assert ok and (kind, reason) == ("", "")

    sim.sim.phase = "shutting_down"  # what the sim answers during a restart's first phase
    ((ok, _lat, _info, error, auth, status, kind, reason),) = _probe(rest)
    assert (ok, auth, status, kind) == (False, False, 503, P.HTTP)
    assert reason == "HTTP 503 shutting down (Service Unavailable: Shutdown in progress)"
    assert "<" not in error and "\n" not in error  # one line, no HTML page in the log

    sim.sim.phase = "booting"
    ((*_x, status, kind, reason),) = _probe(rest)
    assert (status, kind, reason) == (503, P.HTTP, "HTTP 503 Asterisk not booted")
    sim.sim.phase = ""

    sim.control.rest_fault(seconds=3.0, count=1, path="/asterisk/info")
    ((*_x, status, kind, reason),) = _probe(rest)
    assert (status, kind, reason) == (None, P.NO_ANSWER, "no answer within 1 s")

    refused = AriRest(f"http://127.0.0.1:{_closed_port()}/ari", "u", "p", timeout=1.0)
    ((*_x, status, kind, reason),) = _probe(refused)
    assert (status, kind, reason) == (None, P.REFUSED, "connection refused")

    wrong = AriRest(sim.url, sim.user, "wrong", timeout=1.0)
    ((*_x, auth, status, kind, _reason),) = _probe(wrong)
    assert (auth, status, kind) == (True, 401, P.AUTH)


def test_a_probe_still_waiting_past_the_stall_limit_is_a_stall_already():
    stats = ProbeStats(stall_after=2.0)
    stats.in_flight_since = 100.0
    assert stats.current(now=101.5)[0] == ""  # not yet
    kind, status, reason, since = stats.current(now=103.0)
    assert (kind, status, reason, since) == (P.NO_ANSWER, None, "no answer for 3.0 s yet", 100.0)
    stats.in_flight_since = None
    assert stats.current(now=103.0) == ("", None, "", 0.0)


def test_a_new_problem_is_reported_once_and_a_change_of_kind_again():
    stats = ProbeStats()
    assert stats.note(P.HTTP, 503, "HTTP 503 shutting down", now=10.0)
    assert not stats.note(P.HTTP, 503, "HTTP 503 shutting down", now=11.0)  # same episode
    assert stats.problem_since == 10.0
    assert stats.note(P.REFUSED, None, "connection refused", now=12.0)
    assert not stats.note("", None, "", now=13.0)
    assert (stats.problem, stats.problem_kind, stats.problem_since, stats.stalled) == ("", "", 0.0, False)


def _status(address: str) -> dict:
    try:
        return ctl(address, "status", timeout=2)
    except TimeoutError:
        return {"data": {"link": {"state": "?"}, "probe": {}}, "text": ""}


def _probe_line(reply: dict) -> str:
    return next((line for line in reply["text"].splitlines() if line.startswith("rest probe:")), "")


def test_status_shows_what_rest_answers_through_each_phase_of_a_restart(sim, processes, tmp_path):
    ini = write_config(tmp_path, sim)  # probe every 0.5 s
    start_stack(processes, ini, tmp_path)
    address = control_address(tmp_path)
    eventually(lambda: _status(address)["data"]["link"]["state"] == "connected", timeout=20)
    eventually(lambda: _probe_line(_status(address)).startswith("rest probe: ok"), timeout=10)
    sim.control.restart(shutting_down=3.0, down_for=3.0, booting=3.0, wait=False)

    def shows(text: str, link: str | None = None):
        def check():
            reply = _status(address)
            line = _probe_line(reply)
            assert text in line, line
            if link is not None:
                assert reply["data"]["link"]["state"] == link, reply["data"]["link"]
            return reply
        return eventually(check, timeout=10, interval=0.1)

    # the WebSocket is still up while REST says it is going away: not "ok"
    shutting = shows("rest probe: ERROR - HTTP 503 shutting down (Service Unavailable: "
                     "Shutdown in progress) since", link="connected")
    probe = shutting["data"]["probe"]
    assert (probe["problem_kind"], probe["problem_status"]) == ("http", 503)
    shows("rest probe: DOWN - connection refused since")
    shows("rest probe: ERROR - HTTP 503 Asterisk not booted since")
    shows("rest probe: ok")


def test_a_lost_websocket_wakes_the_probe(sim, processes, tmp_path):
    """Probing every 30 s, Asterisk going away is still read at once when the reader loses it."""
    ini = write_config(tmp_path, sim, ari={"probe_interval": "30s"})
    start_stack(processes, ini, tmp_path)
    address = control_address(tmp_path)
    eventually(lambda: _status(address)["data"]["link"]["state"] == "connected", timeout=20)
    sim.control.restart(down_for=8.0, wait=False)
    # Refused, or (when the probe's kept-alive connection dies with the server) no answer: either
    # way read within seconds of the reader losing the WebSocket, not at the next 30 s probe.
    eventually(lambda: any(word in _probe_line(_status(address))
                           for word in ("DOWN - connection refused", "STALLED")), timeout=6,
               interval=0.1)
