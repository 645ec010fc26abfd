"""The three settings arictl needs, read without importing arimonitor.config.

`import arimonitor.config` costs about as much as a whole bare Python start (dataclasses,
pathlib, logging...), which alone would break "within 2x of python -c pass" for `arictl
status`; `arimonitor.datatypes` (the converters) is light, so durations go through the same
parser as the config's. This reader follows the same lookup (environment
ARIMONITOR_<SECTION>_<KEY>, then the file, then the default from config.SETTINGS) for
zmq.control, zmq.publish and console.timeout only; tests/console/test_settings.py checks
that it agrees with load_config(), so the two cannot drift apart silently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from arimonitor import datatypes
from arimonitor.console.zmtp import address

# Mirrors of config.SETTINGS defaults (checked by the contract test).
DEFAULTS = {
    "paths.var": "var",
    "paths.run": "{var}/run",
    "zmq.control": "ipc://{run}/control.sock",
    "zmq.publish": "ipc://{run}/publish.sock",
    "console.timeout": "5s",
}


class Found:
    def __init__(self, control: str, publish: str, timeout: float, config_path: str | None):
        self.control = control
        self.publish = publish
        self.timeout = timeout
        self.config_path = config_path


def seconds(text: str) -> float:
    """A positive duration, parsed by the config's own converter (datatypes.seconds): arictl
    and `load_config` accept the same forms; a reply timeout must also be above zero."""
    number = datatypes.seconds(text)
    if not number > 0:
        raise ValueError(f"{text!r} must be a positive duration")
    return number


def find_home(environ: Mapping[str, str]) -> str:
    if environ.get("ARIMONITOR_HOME"):
        return os.path.realpath(environ["ARIMONITOR_HOME"])
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    if os.path.exists(os.path.join(here, "supervisord.conf")):
        return here
    return os.path.realpath(os.getcwd())


def _path(raw: str, home: str, var: str, run: str) -> str:
    if not raw:
        return ""
    expanded = os.path.expanduser(raw.strip().format(home=home, var=var, run=run))
    return os.path.normpath(expanded if os.path.isabs(expanded) else os.path.join(home, expanded))


def _read_file(path: str) -> dict[str, str]:
    import configparser  # only when a file exists; most of its cost is shared with json

    parser = configparser.ConfigParser(interpolation=None, strict=False)  # as config.py: sections may repeat
    try:
        with open(path, encoding="utf-8-sig") as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    values = {}
    for name in DEFAULTS:
        section, key = name.split(".")
        if parser.has_option(section, key):
            values[name] = parser.get(section, key)
    return values


def resolve(config: str | None, endpoint: str | None, timeout: str | None,
            environ: Mapping[str, str]) -> Found:
    """Settings for this arictl run; ValueError with an operator-readable message."""
    home = find_home(environ)
    explicit = config or environ.get("ARIMONITOR_CONFIG")
    path = explicit or os.path.join(home, "conf", "arimonitor.ini")
    from_file: dict[str, str] = {}
    if os.path.exists(path):
        from_file = _read_file(path)
    elif explicit:
        raise ValueError(f"config file {path} does not exist")
    raw = {}
    for name, default in DEFAULTS.items():
        env_name = "ARIMONITOR_" + name.replace(".", "_").upper()
        raw[name] = environ.get(env_name, from_file.get(name, default))
    var = _path(raw["paths.var"], home, "", "")
    run = _path(raw["paths.run"], home, var, "")
    control = (endpoint or raw["zmq.control"]).strip().format(home=home, var=var, run=run)
    publish = raw["zmq.publish"].strip().format(home=home, var=var, run=run)
    for label, value in (("control socket", control), ("publish socket", publish)):
        try:
            address(value)
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
    wait = seconds(timeout if timeout is not None else raw["console.timeout"])
    return Found(control, publish, wait, path if os.path.exists(path) else None)
