"""The ARIMONITOR> prompt driven for real through a pseudo-terminal (pexpect)."""

from __future__ import annotations

import os
import sys

import pexpect
import pytest

from tests.console.conftest import ARICTL

pytestmark = pytest.mark.timeout(60)
PROMPT = "ARIMONITOR> "


def spawn(env: dict[str, str], *args: str) -> pexpect.spawn:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ARIMONITOR_")}
    full.update(env, TERM="dumb")
    child = pexpect.spawn(sys.executable, [ARICTL, *args], env=full, encoding="utf-8", timeout=10,
                          dimensions=(40, 200))
    child.expect_exact(PROMPT)
    return child


def say(child: pexpect.spawn, line: str, answer: str) -> None:
    child.sendline(line)
    child.expect_exact(answer)
    child.expect_exact(PROMPT)


def quit_(child: pexpect.spawn) -> None:
    child.sendline("quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_completion_help_history_and_leaving(engine, tmp_path):
    history = tmp_path / "history"
    env = {**engine.env, "ARIMONITOR_HISTORY": str(history)}

    child = spawn(env)
    child.sendline("version")
    child.expect_exact("console API 1")
    child.expect_exact(PROMPT)
    # command name completion, then an argument choice, then an option and its choice
    child.send("pi\t")
    child.expect_exact("pick ")
    child.send("gr\t")
    child.expect_exact("green ")
    child.send("--mo\t")
    child.expect_exact("--mode ")
    child.send("s\t")
    child.expect_exact("safe ")
    child.send("\r")
    child.expect_exact("picked green (safe)")
    child.expect_exact(PROMPT)
    child.sendline("help")
    child.expect("CONSOLE.*TEST")
    child.expect_exact(PROMPT)
    child.sendline("help pick")
    child.expect_exact("usage: pick red|green|blue")
    child.expect_exact(PROMPT)
    # an error never ends the session
    say(child, "pikc", "did you mean: pick")
    quit_(child)
    assert "pick green --mode safe" in history.read_text()
    assert oct(history.stat().st_mode & 0o777) == "0o600"

    # a second session recalls the first one's history; Ctrl-D leaves
    child = spawn(env)
    child.send("\x12green")  # Ctrl-R: reverse search in the history
    child.send("\r")
    child.expect_exact("picked green (safe)")
    child.expect_exact(PROMPT)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_dead_engine_keeps_the_prompt(tmp_path):
    env = {"ARIMONITOR_ZMQ_CONTROL": f"ipc://{tmp_path}/none.sock", "ARIMONITOR_CONSOLE_TIMEOUT": "1s",
           "ARIMONITOR_HISTORY": str(tmp_path / "h"), "ARIMONITOR_CONFIG": os.devnull}
    full = {k: v for k, v in os.environ.items() if not k.startswith("ARIMONITOR_")}
    full.update(env, TERM="dumb")
    child = pexpect.spawn(sys.executable, [ARICTL], env=full, encoding="utf-8", timeout=10)
    child.expect_exact("arimonitor status")
    child.expect_exact(PROMPT)
    child.sendline("status")
    child.expect_exact("no answer from the engine")
    child.expect_exact(PROMPT)
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_watch_at_the_prompt_and_completion_of_setting_names(engine, tmp_path):
    child = spawn({**engine.env, "ARIMONITOR_HISTORY": str(tmp_path / "h")})
    child.send("get transcoder.bi\t")          # setting names complete, not only command names
    child.expect_exact("transcoder.bitrate ")
    child.send("\x15")                         # Ctrl-U: drop the line
    child.send("wat\t")                        # watch is a command here too
    child.expect_exact("watch ")
    child.send("c2\t")
    child.expect_exact("c2c ")
    child.send("\r")
    child.expect_exact("watching c2c on")
    child.sendintr()                           # Ctrl-C ends the watch, not the session
    child.expect_exact(PROMPT)
    say(child, "help", "watch")
    quit_(child)
