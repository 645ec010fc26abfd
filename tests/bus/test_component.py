"""The engine's side of the bus (arimonitor/bus/component.py): the bus process's report as the
`bus` view, and "not connected" with why when it has not reported or went silent."""

from __future__ import annotations

from types import SimpleNamespace

from arimonitor.bus.component import STALE_AFTER, BusComponent

CFG = {"bus.enabled": True, "bus.user": "guest", "bus.host": "127.0.0.1", "bus.port": 5672,
       "bus.vhost": "/", "bus.exchange": "ex"}


def component(reports: dict) -> BusComponent:
    offered = {}
    api = SimpleNamespace(cfg=CFG, offer=offered.__setitem__, process_reports=lambda: reports)
    return BusComponent(api)


def test_the_view_is_the_bus_process_report():
    reports = {"bus": {"process": "bus", "received": 1000.0,
                       "counters": {"connected": True, "confirmed": 7, "missed": 1, "other": 3}}}
    view = component(reports).view(now=1001.0)
    assert view["connected"] is True and view["confirmed"] == 7 and view["missed"] == 1
    assert view["broker"] == "guest@127.0.0.1:5672/" and "other" not in view


def test_no_report_or_a_stale_one_is_not_connected_with_why():
    assert component({}).view()["last_error"] == "the bus process has not reported yet"
    reports = {"bus": {"process": "bus", "received": 1000.0, "counters": {"connected": True}}}
    view = component(reports).view(now=1000.0 + STALE_AFTER + 1)
    assert view["connected"] is False and "silent" in view["last_error"]


def test_off_is_only_off():
    off = component({})
    off.enabled = False
    assert off.view() == {"enabled": False}
