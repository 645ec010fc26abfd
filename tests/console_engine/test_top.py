"""`arictl top` against a real Engine object: through a real pseudo-terminal (pexpect: keys,
rich's full-screen view) and through a pipe (the plain periodic table)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pexpect
import pytest

from arimonitor.console.topmodel import TopModel
from tests.console_engine.engine_here import EngineHere
from tests.support import ROOT

pytestmark = pytest.mark.timeout(60)
ARICTL = str(ROOT / "bin" / "arictl")


def env_for(here: EngineHere) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARIMONITOR_")}
    env.update(ARIMONITOR_CONFIG=str(here.ini), TERM="xterm-256color", COLUMNS="150", LINES="45")
    return env


def put_call(here: EngineHere, call_id: str, client: str, origin: str, destination: str) -> None:
    """A call as the engine announces it (the view it publishes and `calls` lists)."""
    from arimonitor.engine import states as S
    from arimonitor.engine.state import Call

    def add():
        state = here.engine.state
        call = Call(call_id, state.server, time.time() - 75, client=client, origin=origin,
                    destination=destination, direction=S.DIRECTION_INTERNAL, state=S.CALL_UP)
        state.calls[call.id] = call
        here.engine.notifier.publish("call.up", call.view())

    here.in_loop(add)


def test_top_in_a_real_terminal_filters_by_client_and_quits(here):
    child = pexpect.spawn(sys.executable, [ARICTL, "top", "--interval", "0.5"], env=env_for(here),
                          encoding="utf-8", timeout=15, dimensions=(45, 150))
    try:
        child.expect_exact("arimonitor top")
        child.expect_exact("endpoints per client")
        child.expect_exact("[client: all]")
        put_call(here, "top-call-1", "101", "1013010", "1013011")
        child.expect_exact("1013010")        # the call, live, with its running time
        child.expect(r"1m1[5-9]s|1m[2-5]\ds")
        child.send("/")                       # type a client
        child.expect_exact("client: _")
        child.send("102\r")
        child.expect_exact("[client: 102]")
        child.send("a")
        child.expect_exact("[client: all]")
        first = min({e["client"] for e in here.cmd("list")["data"] if e["client"]} | {"101"})
        child.send("c")                       # the first client in order, then the next
        child.expect_exact(f"[client: {first}]")
        child.send("q")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_top_into_a_pipe_prints_plain_tables(here):
    put_call(here, "top-call-2", "101", "1013020", "1013021")
    done = subprocess.run([sys.executable, ARICTL, "top", "--count", "2", "--interval", "0.3"],
                          env=env_for(here), capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("arimonitor top") == 2
    assert "\x1b[" not in out                 # no terminal codes in a pipe
    listed = here.cmd("list")["data"]
    per_101 = sum(1 for e in listed if e["client"] == "101")
    assert any(line.split()[:1] == ["101"] and int(line.split()[2]) + int(line.split()[1])
               + int(line.split()[3]) == per_101 for line in out.splitlines() if line[:3] == "101")
    assert "1013020" in out and "1013021" in out
    assert "transcoder: not running in this engine" in out


def test_top_reports_an_engine_that_does_not_answer(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARIMONITOR_")}
    env.update(ARIMONITOR_ZMQ_CONTROL=f"ipc://{tmp_path}/none.sock",
               ARIMONITOR_ZMQ_PUBLISH=f"ipc://{tmp_path}/none-pub.sock",
               ARIMONITOR_CONSOLE_TIMEOUT="0.5s", ARIMONITOR_CONFIG=str(tmp_path / "none.ini"))
    (tmp_path / "none.ini").write_text("")
    done = subprocess.run([sys.executable, ARICTL, "top", "--count", "1"], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 3
    assert "engine" in done.stderr.lower()


def test_bad_options_are_a_usage_error(here):
    done = subprocess.run([sys.executable, ARICTL, "top", "--bogus"], env=env_for(here),
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2 and "usage: arictl top" in done.stderr


def test_model_applies_events_between_replies():
    model = TopModel()
    model.take("list", [{"id": "1", "client": "101", "state": "online"},
                        {"id": "2", "client": "101", "state": "online"}])
    model.take("calls", [{"id": "a", "client": "101", "created": 100.0, "state": "up"}])
    model.on_event("endpoint.offline", {"id": "2", "client": "101"})
    model.on_event("call.ended", {"id": "a"})
    model.on_event("c2c.final", {"result": "failed", "reason": "destination_busy", "t": 200.0})
    model.on_event("c2c.final", {"result": "completed", "t": 130.0})
    view = model.view(now=205.0)
    assert view["endpoints"] == [("101", 1, 1, 0)]
    assert view["calls"] == []
    assert view["c2c"]["last_minute"] == {"failed": 1}       # the other is older than a minute
    assert dict(view["c2c"]["outcomes"]) == {("failed", "destination_busy"): 1, ("completed", ""): 1}
    assert model.view(client="999")["endpoints"] == []


def test_other_commands_never_import_rich(here):
    """arictl's start-up cost is measured (bench_arictl.py): only `top` may pay for rich."""
    done = subprocess.run([sys.executable, "-X", "importtime", ARICTL, "version"], env=env_for(here),
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "arimonitor.console.client" in imported
    assert not {m for m in imported if m.split(".")[0] in ("rich", "zmq")}


def test_model_starts_with_the_recent_click_to_call_finals():
    model = TopModel()
    model.take("c2c", {"recent": [{"request_id": "a", "result": "completed", "updated": 190.0},
                                  {"request_id": "b", "result": None, "updated": 195.0},   # in progress
                                  {"request_id": "c", "result": "refused", "reason": "expired",
                                   "updated": 100.0}], "in_progress": []})
    c2c = model.view(now=200.0)["c2c"]
    assert c2c["last_minute"] == {"completed": 1} and c2c["per_minute"] == 1.0
    assert dict(c2c["outcomes"]) == {("completed", ""): 1, ("refused", "expired"): 1}
