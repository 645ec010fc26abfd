"""Console commands on a real Engine object (no processes): list, get/set, ips, reload, debug,
_report/status, help. The loop runs in a thread; fast commands are dispatched in it."""

from __future__ import annotations

import logging
import shutil
import time

import pytest

from arimonitor import protocol
from arimonitor.commands import build_registry
from arimonitor.commands.processes import (
    STALE_AFTER,
    processes_lines,
    processes_view,
)
from arimonitor.config import load_config
from arimonitor.engine.state import RemoteIp
from arimonitor.engineproc.process import apply_saved
from tests.console_engine.engine_here import EngineHere
from tests.engine.stack import V27

pytestmark = pytest.mark.timeout(30)


def test_list_masks_passwords_unless_asked_and_filters(here):
    r = here.cmd("list", "101")
    assert r["status"] == "ok" and r["text"].startswith("=== ENDPOINTS FOR CLIENT 101 (12) ===")
    assert {row["password"] for row in r["data"]} == {"********"}
    secret = here.engine.ctx.tables().endpoints["1013010"].password
    assert secret not in r["text"]
    shown = here.cmd("list_endpoints", "101", "--show-passwords")
    assert secret in shown["text"] and any(row["password"] == secret for row in shown["data"])
    here.in_loop(lambda: setattr(here.engine.state.endpoints["1013010"], "state", "online"))
    online = here.cmd("list", "101", "--status", "online")["data"]
    assert [row["id"] for row in online] == ["1013010"]
    typed = here.cmd("list", "--type", "CONDOMINIO")["data"]
    assert typed and {row["type"] for row in typed} == {"condominio"}
    missing = here.cmd("list", "1011")
    assert missing["code"] == protocol.E_NOT_FOUND and "101" in missing["reason"]
    assert here.cmd("list", "--status", "weird")["code"] == protocol.E_BAD_ARGUMENTS


def test_get_and_set_check_names_and_values_and_survive_a_restart(here):
    everything = here.cmd("get")
    assert "ari.password" in everything["text"] and "********" in everything["text"]
    assert here.cfg["ari.password"] not in everything["text"].split()
    unknown = here.cmd("set", "logging.levle", "DEBUG")
    assert unknown["code"] == protocol.E_NOT_FOUND and "logging.level" in unknown["reason"]
    assert here.cmd("set", "ari.url", "http://127.0.0.1:1/ari")["code"] == protocol.E_NOT_SETTABLE
    bad = here.cmd("set", "transcoder.bitrate", "fast")
    assert bad["code"] == protocol.E_BAD_VALUE and "transcoder.bitrate" in bad["reason"]
    root = logging.getLogger()
    before = root.level
    try:
        ok = here.cmd("set", "transcoder.bitrate", "64")
        assert ok["status"] == "ok" and "survives an engine restart" in ok["text"]
        assert here.engine.cfg["transcoder.bitrate"] == 64  # the engine's own Config, in place
        assert here.cmd("set", "logging.level", "debug")["status"] == "ok"
        assert root.level == logging.DEBUG
        got = here.cmd("get", "transcoder.bitrate")["data"]
        assert got["value"] == "64" and got["saved"] and got["settable"]
        # what the engine would start with next time
        restarted = apply_saved(load_config(here.ini, environ={}))
        assert restarted["transcoder.bitrate"] == 64 and restarted["logging.level"] == "DEBUG"
    finally:
        root.setLevel(before)


def test_ips_whitelist_is_saved_and_checked(here):
    def add_ip():
        here.engine.state.remote_ips["10.0.0.5"] = RemoteIp("10.0.0.5", time.time() - 60, time.time(),
                                                            {"1013010"}, False, "event")
        here.engine.store.save_remote_ip(here.engine.state.remote_ips["10.0.0.5"].view())
    here.in_loop(add_ip)
    listed = here.cmd("ips")
    assert listed["text"].startswith("=== REMOTE IPS (1) ===") and "1013010" in listed["text"]
    assert here.cmd("ips", "whitelist", "add", "10.0.0.5")["status"] == "ok"
    rows = here.in_loop(here.engine.store.load_remote_ips)
    assert rows[0]["whitelist"] is True
    assert [r["ip"] for r in here.cmd("ips", "--whitelisted")["data"]] == ["10.0.0.5"]
    assert here.cmd("ips", "whitelist", "remove", "10.0.0.5")["status"] == "ok"
    assert here.in_loop(here.engine.store.load_remote_ips)[0]["whitelist"] is False
    assert here.cmd("ips", "whitelist", "remove", "10.9.9.9")["code"] == protocol.E_NOT_FOUND
    assert here.cmd("ips", "whitelist", "add", "10.0.0.999")["code"] == protocol.E_BAD_ARGUMENTS
    assert here.cmd("ips", "whitelist")["data"] == []   # alone: the whitelist, empty again


def test_reload_reports_changes_by_id_and_problems_never_passwords(tmp_path):
    for name in ("endpoints_pjsip.def", "__CLIENTES__.DEF", "__MQSERVERS__.DEF"):
        shutil.copy(V27 / name, tmp_path / name)
    files = {"endpoints": tmp_path / "endpoints_pjsip.def", "clients": tmp_path / "__CLIENTES__.DEF",
             "mqservers": tmp_path / "__MQSERVERS__.DEF"}
    here = EngineHere(files)
    try:
        assert "no changes" in here.cmd("reload", "all")["text"]
        path = files["endpoints"]
        lines = path.read_text().splitlines()
        dropped = next(i for i, x in enumerate(lines) if "Endpoint:1003000 " in x)
        changed = next(i for i, x in enumerate(lines) if "Endpoint:1003010 " in x)
        lines[changed] = lines[changed].replace("PW:P4XgreHciS", "PW:N3wS3cret99")
        del lines[dropped]
        lines += ["#include pjsip/1009999.pjsip ; Endpoint:1009999 CLI:100 TYPE:portaria PW:Zz9Zz9Zz9",
                  "this line is broken PW:LeakMe123"]
        path.write_text("\n".join(lines) + "\n")
        r = here.cmd("reload", "endpoints")
        assert r["status"] == "ok", r
        data = r["data"]["endpoints"]
        assert data["added"] == ["1009999"] and data["removed"] == ["1003000"]
        assert data["changed"] == {"1003010": ["password"]}
        (problem,) = [p for p in r["data"]["problems"] if p["level"] == "error"]
        assert problem["line"] == len(lines) and problem["file"].endswith("endpoints_pjsip.def")
        assert f"endpoints_pjsip.def:{len(lines)} error" in r["text"]
        for secret in ("N3wS3cret99", "Zz9Zz9Zz9", "LeakMe123", "P4XgreHciS"):
            assert secret not in r["text"] and secret not in str(r["data"])
        assert here.engine.ctx.tables().endpoints.get("1009999") is not None
        listed = {row["id"] for row in here.cmd("list", "100")["data"]}
        assert "1009999" in listed
    finally:
        here.close()


def test_debug_sets_the_engine_level_and_tells_the_others(here):
    published = []
    here.in_loop(lambda: here.engine.notifier.subscribe("control.", lambda t, b: published.append((t, b))))
    root = logging.getLogger()
    before = root.level
    try:
        assert here.cmd("debug", "on", "transcoder")["status"] == "ok"
        assert published[-1] == ("control.level", {"process": "transcoder", "level": "DEBUG",
                                                   "t": published[-1][1]["t"]})
        assert root.level == before  # not for the engine itself
        here.cmd("debug", "on")
        assert root.level == logging.DEBUG and published[-1][1]["process"] == "all"
        here.cmd("debug", "off")
        assert root.level == logging.INFO and published[-1][1]["level"] == "INFO"
        assert "log level:  engine INFO" in here.cmd("status")["text"]
        here.cmd("debug", "on", "engine")
        line = next(x for x in here.cmd("status")["text"].splitlines() if x.startswith("log level:"))
        assert line == "log level:  engine DEBUG, all INFO"  # the engine once, not "engine DEBUG, engine DEBUG"
    finally:
        root.setLevel(before)


def test_clicktocall_report_shows_in_status_as_seen_then_stale(here):
    report = ('{"process": "clicktocall", "broker": "[main] guest@127.0.0.1:5672/", "queue": "c2c",'
              ' "connected_since": %f, "counters": {"accepted": 3}}' % (time.time() - 120))
    assert here.cmd("_report", report)["status"] == "ok"
    assert here.cmd("_report", "[1, 2]")["code"] == protocol.E_BAD_ARGUMENTS
    status = here.cmd("status")
    (c2c,) = status["data"]["processes"]["clicktocall"]
    assert c2c["queue"] == "c2c" and not c2c["stale"]
    assert "clicktocall: seen, connected to [main] guest@127.0.0.1:5672/ queue c2c since 2m ago" in status["text"]
    assert "transcoder: not reported" in status["text"]
    later = processes_view(here.ctx, now=c2c["received"] + STALE_AFTER + 1)
    assert later["clicktocall"][0]["stale"]
    assert "STALE" in "\n".join(processes_lines(later))


def test_every_command_has_help():
    registry = build_registry()
    for name, cmd in registry.commands.items():
        assert cmd.help_text().startswith(f"{name} - ") and cmd.summary, name
        assert cmd.examples or cmd.hidden, f"{name} has no example"


def test_ips_whitelist_in_advance_listed_alone_and_sorted_as_addresses(here):
    added = here.cmd("ips", "whitelist", "add", "203.0.113.7")   # the README's example
    assert added["status"] == "ok" and "has not registered here yet" in added["text"]
    for ip in ("10.0.0.10", "10.0.0.9"):
        assert here.cmd("ips", "whitelist", "add", ip)["status"] == "ok"
    listed = here.cmd("ips", "whitelist")
    assert [r["ip"] for r in listed["data"]] == ["10.0.0.9", "10.0.0.10", "203.0.113.7"]
    assert "never registered" in listed["text"]
    assert here.cmd("ips", "whitelist", "remove", "10.0.0.10")["status"] == "ok"
    gone = here.cmd("ips", "whitelist", "remove", "198.51.100.1")
    assert gone["code"] == protocol.E_NOT_FOUND and "not on the whitelist" in gone["reason"]


def test_history_shows_cause_text_how_many_exist_and_one_rule_for_unknown_clients(here):
    def fill():
        for n in range(25):
            cause, text = (17, "User busy") if n == 0 else (16, "Normal Clearing")
            here.engine.store.save_call({
                "server": "asterisk1", "id": f"h{n}", "client": "101", "origin": "1013010",
                "destination": "1013015", "direction": "internal", "created": 1000.0 + n,
                "answered": None, "ended": 1010.0 + n, "hangup_cause": cause, "cause_txt": text,
                "end_reason": "hangup", "duration": 10.0, "billsec": 0.0, "channels": []})
    here.in_loop(fill)
    shown = here.cmd("history", "101")
    assert shown["text"].startswith("=== CALL HISTORY FOR CLIENT 101 (20 of 25; --limit N for more) ===")
    everything = here.cmd("history", "101", "--limit", "100")
    assert everything["text"].startswith("=== CALL HISTORY FOR CLIENT 101 (25) ===")
    assert "17 User busy" in everything["text"] and "16 Normal Clearing" in everything["text"]
    # one rule for list, calls and history: an unknown client is an error, a known one may be empty
    for words in (["list", "999"], ["calls", "999"], ["history", "999"]):
        reply = here.cmd(*words)
        assert reply["code"] == protocol.E_NOT_FOUND and "no client '999'" in reply["reason"], words
    assert here.cmd("calls", "101")["status"] == "ok"
    # an l typed for a 1: 101 is the first guess
    assert here.cmd("list", "10l")["data"]["suggestions"][0] == "101"
