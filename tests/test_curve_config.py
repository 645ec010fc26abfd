"""The events link beyond loopback: config validation, `arimonitor keys`, host roles, refusals."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
import zmq
import zmq.auth

from arimonitor.cli import main as arimonitor_main
from arimonitor.config import ConfigError, load_config
from arimonitor.curve import KeysExist, RefusalWatch, make_keypair, secure_engine_socket
from arimonitor.engine.state import Counters
from arimonitor.supervision import Tree


def config(**env: str):
    return load_config(environ=env)


def test_events_beyond_loopback_without_curve_fails_naming_the_key():
    with pytest.raises(ConfigError) as err:
        config(ARIMONITOR_ZMQ_EVENTS="tcp://0.0.0.0:5560")
    assert "[zmq] events = tcp://0.0.0.0:5560" in str(err.value) and "[zmq] curve = yes" in str(err.value)
    with pytest.raises(ConfigError, match=r"\[zmq\] events"):
        config(ARIMONITOR_ZMQ_EVENTS="tcp://10.1.2.3:5560", ARIMONITOR_ZMQ_CURVE="no")


@pytest.mark.parametrize("endpoint", ["tcp://0.0.0.0:5560", "tcp://*:5560", "tcp://pbx-central:5560"])
def test_events_beyond_loopback_with_curve_is_accepted(endpoint):
    assert config(ARIMONITOR_ZMQ_EVENTS=endpoint, ARIMONITOR_ZMQ_CURVE="yes")["zmq.events"] == endpoint


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:5560", "tcp://[::1]:5560", "ipc:///tmp/e.sock"])
def test_plain_events_on_loopback_stay_allowed(endpoint):
    assert config(ARIMONITOR_ZMQ_EVENTS=endpoint)["zmq.events"] == endpoint


def test_other_sockets_stay_loopback_only_even_with_curve():
    with pytest.raises(ConfigError, match=r"\[zmq\] control"):
        config(ARIMONITOR_ZMQ_CONTROL="tcp://0.0.0.0:5561", ARIMONITOR_ZMQ_CURVE="yes")
    with pytest.raises(ConfigError, match=r"bad value for \[zmq\] events"):
        config(ARIMONITOR_ZMQ_EVENTS="tcp://:5560", ARIMONITOR_ZMQ_CURVE="yes")


def test_host_role_is_checked():
    assert config(ARIMONITOR_HOST_ROLE="Reader")["host.role"] == "reader"
    with pytest.raises(ConfigError, match=r"\[host\] role"):
        config(ARIMONITOR_HOST_ROLE="pbx")


def test_keypair_files_secret_0600_never_overwritten_without_force(tmp_path):
    public_path, secret_path, public = make_keypair(tmp_path / "keys", "reader")
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert zmq.auth.load_certificate(secret_path)[0].decode() == public
    assert zmq.auth.load_certificate(public_path) == (public.encode(), None)
    old_secret = secret_path.read_bytes()
    with pytest.raises(KeysExist, match="--force"):
        make_keypair(tmp_path / "keys", "reader")
    assert secret_path.read_bytes() == old_secret
    _, _, new = make_keypair(tmp_path / "keys", "reader", force=True)
    assert new != public and stat.S_IMODE(secret_path.stat().st_mode) == 0o600


def test_keys_command_prints_where_and_the_public_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARIMONITOR_ZMQ_KEYS", str(tmp_path / "keys"))
    monkeypatch.setenv("ARIMONITOR_ZMQ_READERS", str(tmp_path / "keys" / "readers"))
    assert arimonitor_main(["keys", "engine"]) == 0
    out = capsys.readouterr().out
    public, _ = zmq.auth.load_certificate(tmp_path / "keys" / "engine.key")
    assert f"engine public key: {public.decode()}" in out
    assert str(tmp_path / "keys" / "engine.key_secret") in out
    assert (tmp_path / "keys" / "readers").is_dir()
    assert "secret-key" not in out and arimonitor_main(["keys", "engine"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert arimonitor_main(["keys", "engine", "--force"]) == 0


def test_curve_without_keys_fails_at_start_naming_the_file(tmp_path):
    cfg = config(ARIMONITOR_ZMQ_CURVE="yes", ARIMONITOR_ZMQ_KEYS=str(tmp_path))
    sock = zmq.Context.instance().socket(zmq.PULL)
    try:
        with pytest.raises(ConfigError, match="engine.key_secret.*arimonitor keys"):
            secure_engine_socket(sock, cfg, zmq.Context.instance())
        make_keypair(tmp_path, "engine")
        with pytest.raises(ConfigError, match=r"\[zmq\] readers"):
            secure_engine_socket(sock, cfg.with_overrides({"zmq.readers": str(tmp_path / "none")}),
                                 zmq.Context.instance())
    finally:
        sock.close(0)


def test_refusals_are_logged_once_per_episode_and_counted(caplog):
    sock = zmq.Context.instance().socket(zmq.PULL)
    counters = Counters()
    watch = RefusalWatch(sock, counters)
    try:
        with caplog.at_level(logging.WARNING, logger="arimonitor.curve"):
            for _ in range(3):
                watch.on_event(zmq.EVENT_HANDSHAKE_FAILED_AUTH, b"tcp://0.0.0.0:5560")
            watch.on_event(zmq.EVENT_HANDSHAKE_SUCCEEDED, b"tcp://0.0.0.0:5560")
            watch.on_event(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, b"tcp://0.0.0.0:5560")
        assert counters.readers_refused == 4
        refusals = [r for r in caplog.records if "was refused" in r.getMessage()]
        assert len(refusals) == 2 and "not listed in [zmq] readers" in refusals[0].getMessage()
    finally:
        watch.close()
        sock.close(0)


@pytest.mark.parametrize("role, runs, not_runs", [
    ("all", {"engine", "ari-reader_00", "transcoder_00"}, set()),
    ("central", {"engine", "transcoder_00", "clicktocall"}, {"ari-reader_00"}),
    ("reader", {"ari-reader_00"}, {"engine", "transcoder_00", "clicktocall"}),
])
def test_host_role_picks_the_programs(role, runs, not_runs):
    tree = Tree(config(ARIMONITOR_HOST_ROLE=role, ARIMONITOR_TRANSCODER_WORKERS="1"), demo=False)
    expected = set(tree.expected())
    assert runs <= expected and not (not_runs & expected)
    env = tree.environment()
    assert env["ARIMONITOR_RUN_READER"] == ("false" if role == "central" else "true")
    assert env["ARIMONITOR_RUN_ENGINE"] == env["ARIMONITOR_RUN_TRANSCODERS"] == (
        "false" if role == "reader" else "true")
    if role == "reader":
        assert env["ARIMONITOR_CLICKTOCALL"] == "false"


def test_keys_folder_default_is_ignored_by_git():
    assert "conf/keys/" in (Path(__file__).parent.parent / ".gitignore").read_text().split()
