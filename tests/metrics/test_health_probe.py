"""/healthz names a REST problem the probe found, whatever its kind (issue 16)."""

from __future__ import annotations

from arimonitor.metrics.health import problems


def _snap(probe: dict) -> dict:
    return {"server": "asterisk1", "link": {"state": "connected"}, "probe": probe,
            "outage_open_since": None, "transcoders": None, "clicktocall": [], "t": 0.0}


def test_a_503_while_the_websocket_is_up_is_a_problem():
    found = problems(_snap({"problem": "HTTP 503 shutting down (Service Unavailable: Shutdown in progress)",
                            "problem_kind": "http", "stalled": False}))
    # named as `arictl status` names it (one rule: arimonitor/health.py)
    assert found == ["rest probe: HTTP 503 shutting down (Service Unavailable: Shutdown in progress)"]
    assert problems(_snap({"problem": "", "problem_kind": "", "stalled": False})) == []
