"""arictl one-shot against a real fake-engine process over real ZeroMQ."""

from __future__ import annotations

import json
import time

import pytest

from arimonitor.commands import build_registry
from arimonitor.console import client
from tests.console.conftest import arictl, start_engine
from tests.support import eventually

pytestmark = pytest.mark.timeout(60)


def test_version_and_status(engine):
    out = arictl("version", env=engine.env)
    assert out.returncode == 0, out.stderr
    assert "console API 1" in out.stdout
    out = arictl("status", env=engine.env)
    assert (out.returncode, out.stdout) == (0, "engine: fake, 0 calls\n")


def test_help_lists_commands_by_category(engine):
    out = arictl("help", env=engine.env)
    assert out.returncode == 0
    assert "CONSOLE" in out.stdout and "TEST" in out.stdout
    assert "pick" in out.stdout and "_describe" not in out.stdout


def test_help_for_every_registered_command(engine, capsys):
    # in-process main(): still a real ZeroMQ round trip to the engine process, but no fork each
    names = [c.name for c in build_registry().visible()] + ["pick", "fail", "boom", "sleep", "emit", "status"]
    for name in names:
        assert client.main(["--endpoint", engine.control, "help", name]) == 0, name
        out = capsys.readouterr().out
        assert out.startswith(f"{name} - "), out
        assert "usage:" in out and "examples:" in out


def test_help_shows_aliases_and_choices(engine):
    out = arictl("help", "pick", env=engine.env)
    assert "usage: pick red|green|blue [--mode fast|safe] [--loud]" in out.stdout
    out = arictl("help", "?", env=engine.env)
    assert "aliases: ?" in out.stdout


def test_arguments_are_sent_raw_and_parsed_by_the_registry(engine):
    out = arictl("pick", "blue", "--mode", "safe", "--loud", env=engine.env)
    assert (out.returncode, out.stdout) == (0, "PICKED BLUE (SAFE)\n")


def test_exit_codes(engine):
    assert arictl("fail", env=engine.env).returncode == 1          # command error
    boom = arictl("boom", env=engine.env)
    assert boom.returncode == 1 and "kaboom" in boom.stderr         # handler crash, engine lives
    assert arictl("pick", "purple", env=engine.env).returncode == 2  # bad argument
    assert arictl("pick", env=engine.env).returncode == 2            # missing argument
    assert arictl("--nope", "status", env=engine.env).returncode == 2  # arictl's own usage
    assert arictl("version", env=engine.env).returncode == 0


def test_unknown_command_suggests_the_closest(engine):
    out = arictl("pikc", env=engine.env)
    assert out.returncode == 2
    assert "did you mean: pick" in out.stderr


def test_json_output_is_the_envelope(engine):
    out = arictl("--json", "pick", "red", env=engine.env)
    reply = json.loads(out.stdout)
    assert reply["status"] == "ok" and reply["data"] == {"colour": "red", "mode": None}
    out = arictl("--json", "fail", env=engine.env)
    reply = json.loads(out.stdout)
    assert (out.returncode, reply["status"], reply["code"]) == (1, "error", 3)


def test_long_request_and_reply_frames(engine):
    # > 255 bytes takes ZMTP's long frame form both ways
    word = "x" * 3000
    out = arictl("--json", "emit", "warning.test", json.dumps({"message": word}), env=engine.env)
    assert out.returncode == 0, out.stderr
    out = arictl("--json", "_describe", env=engine.env)
    assert len(out.stdout) > 1000 and json.loads(out.stdout)["data"]["api"] == 1


def test_dead_engine_exits_3_quickly_with_the_two_causes(tmp_path):
    started = time.monotonic()
    out = arictl("--timeout", "3", "--endpoint", f"ipc://{tmp_path}/nothing.sock", "status",
                 timeout=60)
    elapsed = time.monotonic() - started
    assert out.returncode == 3
    # It gives up on its own timeout instead of hanging; the margin is for the process's
    # start-up on a loaded machine (it is the whole process that is timed).
    assert elapsed < 3 + 15, elapsed
    assert "arimonitor status" in out.stderr and "[zmq] control" in out.stderr


def test_dead_tcp_engine_exits_3(tmp_path):
    from tests.support import free_port

    out = arictl("--timeout", "2", "--endpoint", f"tcp://127.0.0.1:{free_port()}", "status")
    assert out.returncode == 3 and "connection refused" in out.stderr


def test_stuck_engine_exits_3_within_the_timeout(engine):
    stuck = 10.0  # the engine answers only after this long
    started = time.monotonic()
    out = arictl("--timeout", "0.5", "sleep", str(stuck), env=engine.env, timeout=60)
    elapsed = time.monotonic() - started
    assert out.returncode == 3
    # Gave up after its 0.5 s instead of waiting for the late reply: the rest of `stuck` is
    # the margin for the process's start-up on a loaded machine.
    assert elapsed < stuck, elapsed
    assert "no reply" in out.stderr
    # the fake engine is single-threaded: the next test gets it back awake
    eventually(lambda: arictl("version", env=engine.env).returncode == 0, timeout=30)


def test_non_loopback_endpoint_is_refused():
    out = arictl("--endpoint", "tcp://10.1.2.3:5555", "status")
    assert out.returncode == 2 and "loopback" in out.stderr
    out = arictl("status", env={"ARIMONITOR_ZMQ_CONTROL": "tcp://0.0.0.0:5555"})
    assert out.returncode == 2 and "loopback" in out.stderr


def test_api_version_mismatch_is_a_clear_error(processes):
    newer = start_engine(processes, "--api", "2", ready=lambda out: "speaks API 2" in out.stderr)
    out = arictl("status", env=newer.env)
    assert out.returncode == 1
    assert "API 1" in out.stderr and "API 2" in out.stderr


def test_help_flag_and_bad_timeout():
    out = arictl("--help")
    assert out.returncode == 0 and "exit codes" in out.stdout
    out = arictl("--timeout", "soon", "status")
    assert out.returncode == 2 and "duration" in out.stderr


def test_arictl_options_are_accepted_anywhere_on_the_line(engine):
    before = json.loads(arictl("--json", "status", env=engine.env).stdout)
    after = json.loads(arictl("status", "--json", env=engine.env).stdout)
    assert before["data"] == after["data"] == {"calls": 0}
    timed = arictl("status", "--timeout", "2s", env=engine.env)
    assert (timed.returncode, timed.stdout) == (0, "engine: fake, 0 calls\n")
    opts, words = client.parse_flags(["pick", "--json", "red", "--", "--json"])
    assert opts.json and words == ["pick", "red", "--json"]
    with pytest.raises(client.UsageError, match="unknown option --jsno"):
        client.parse_flags(["--jsno", "status"])
