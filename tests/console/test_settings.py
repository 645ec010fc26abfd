"""arictl's light settings reader must agree with load_config() (it mirrors a part of it)."""

from __future__ import annotations

import os

import pytest

from arimonitor.config import SETTINGS_BY_NAME, load_config
from arimonitor.console import settings


def both(tmp_path, ini: str | None, environ: dict[str, str]):
    env = {"ARIMONITOR_HOME": str(tmp_path), **environ}
    if ini is not None:
        path = tmp_path / "a.ini"
        path.write_text(ini)
        os.chmod(path, 0o600)
        env["ARIMONITOR_CONFIG"] = str(path)
    full = load_config(environ=env)
    light = settings.resolve(None, None, None, env)
    return full, light


@pytest.mark.parametrize("ini, environ", [
    (None, {}),
    ("[paths]\nvar = /srv/ari\n", {}),
    ("[paths]\nvar = data\nrun = {var}/sockets\n", {}),
    ("[paths]\nrun = ~/run\n", {}),
    ("[zmq]\ncontrol = tcp://127.0.0.1:7001\npublish = ipc://{home}/p.sock\n[console]\ntimeout = 250ms\n", {}),
    ("[console]\ntimeout = 2m\n", {"ARIMONITOR_CONSOLE_TIMEOUT": "1.5s", "ARIMONITOR_PATHS_VAR": "/x"}),
    ("\ufeff[zmq]\r\ncontrol = ipc://{run}/ctl.sock\r\n", {"ARIMONITOR_ZMQ_PUBLISH": "tcp://localhost:7002"}),
])
def test_light_reader_agrees_with_load_config(tmp_path, ini, environ):
    full, light = both(tmp_path, ini, environ)
    assert (light.control, light.publish, light.timeout) == \
        (full["zmq.control"], full["zmq.publish"], full["console.timeout"])


def test_defaults_mirror_the_settings_table():
    for name, default in settings.DEFAULTS.items():
        assert SETTINGS_BY_NAME[name].default == default, name


def test_overrides_and_errors(tmp_path):
    env = {"ARIMONITOR_HOME": str(tmp_path)}
    found = settings.resolve(None, "tcp://127.0.0.1:9", "3", env)
    assert (found.control, found.timeout) == ("tcp://127.0.0.1:9", 3.0)
    with pytest.raises(ValueError, match="loopback"):
        settings.resolve(None, "tcp://192.168.1.1:9", None, env)
    with pytest.raises(ValueError, match="does not exist"):
        settings.resolve(str(tmp_path / "missing.ini"), None, None, env)
    for bad in ("0", "-1", "soon", "nan", "inf"):
        with pytest.raises(ValueError):
            settings.seconds(bad)
    assert settings.seconds("250ms") == 0.25 and settings.seconds(" 2m ") == 120.0
