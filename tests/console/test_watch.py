"""`arictl watch` as a real process, reading events the fake engine publishes on PUB."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from arimonitor.console.watch import summarise
from tests.console.conftest import ARICTL, arictl
from tests.support import eventually

pytestmark = pytest.mark.timeout(60)


class Watcher:
    """arictl watch in its own process; a thread collects its stdout lines without blocking us."""

    def __init__(self, env: dict[str, str], *args: str):
        full = {k: v for k, v in os.environ.items() if not k.startswith("ARIMONITOR_")}
        full.update(env)
        self.proc = subprocess.Popen([sys.executable, ARICTL, *args], env=full, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        self.errors: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True).start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            return self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def emit_until_seen(engine, watcher: Watcher, topic: str, body: dict, expected: str) -> str:
    # slow joiner: the SUB may connect after the first publications, so publish until one lands
    def seen() -> str:
        assert arictl("emit", topic, json.dumps(body), env=engine.env).returncode == 0
        matches = [line for line in watcher.lines if expected in line]
        assert matches, watcher.lines
        return matches[0]

    return eventually(seen, timeout=15, interval=0.2)


def test_watch_prints_readable_lines_and_exits_0_on_ctrl_c(engine):
    watcher = Watcher(engine.env, "watch")
    try:
        line = emit_until_seen(engine, watcher, "call.up",
                               {"client": "101", "caller": "1013010", "callee": "1123000", "call_id": "c1"},
                               "call.up 101 1013010 -> 1123000")
        assert line.split()[0].count(":") == 2  # HH:MM:SS first
        emit_until_seen(engine, watcher, "endpoint.offline",
                        {"client": "101", "endpoint": "1013010", "address": "10.0.0.5"},
                        "endpoint.offline 101 1013010 10.0.0.5")
    finally:
        assert watcher.stop() == 0


def test_watch_filters_topics_and_prints_json(engine):
    watcher = Watcher(engine.env, "--json", "watch", "c2c")
    try:
        line = emit_until_seen(engine, watcher, "c2c.final", {"request": "r1", "outcome": "answered"}, "c2c.final")
        assert json.loads(line) == {"topic": "c2c.final", "event": {"request": "r1", "outcome": "answered"}}
        arictl("emit", "call.up", json.dumps({"client": "999"}), env=engine.env)
        emit_until_seen(engine, watcher, "c2c.final", {"request": "r2"}, '"r2"')
        assert not [line for line in watcher.lines if "999" in line]
    finally:
        assert watcher.stop() == 0


def test_watch_says_when_the_engine_is_unreachable(tmp_path):
    watcher = Watcher({"ARIMONITOR_ZMQ_CONTROL": f"ipc://{tmp_path}/c.sock",
                       "ARIMONITOR_ZMQ_PUBLISH": f"ipc://{tmp_path}/p.sock",
                       "ARIMONITOR_CONFIG": os.devnull}, "watch")
    try:
        eventually(lambda: any("waiting for events anyway" in e for e in watcher.errors), timeout=10)
        assert any("arimonitor status" in e for e in watcher.errors)
    finally:
        assert watcher.stop() == 0


def test_unknown_topic_is_a_usage_error():
    assert arictl("watch", "calls2").returncode == 2


def test_summaries():
    assert summarise("call.ended", {"client": "101", "caller": "1013010", "callee": "1123000",
                                    "duration": 192, "cause": "normal"}) == \
        "call.ended 101 1013010 -> 1123000 3m12s normal"
    assert summarise("warning.rest_stall", {"message": "REST slow", "t": 1.0}) == "warning.rest_stall REST slow"
    assert summarise("link.connected", {"server": "asterisk1", "epoch": 3}) == "link.connected asterisk1 epoch=3"
    assert summarise("call.up", "odd") == "call.up odd"


def test_a_call_that_is_up_shows_no_dial_status_until_it_ends():
    up = summarise("call.up", {"origin": "1013010", "destination": "1123000", "dial_status": "RINGING"})
    assert "dial_status" not in up and "RINGING" not in up
    ended = summarise("call.ended", {"origin": "1013010", "destination": "1123000", "dial_status": "BUSY"})
    assert "dial_status=BUSY" in ended
