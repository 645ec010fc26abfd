from __future__ import annotations

import os
import re

import pytest

from arimonitor import datatypes as dt
from arimonitor.config import SETTINGS, ConfigError, load_config
from tests.support import ROOT, write_config


def write(tmp_path, text: str, mode: int = 0o600):
    path = tmp_path / "arimonitor.ini"
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def test_defaults_and_paths_under_var(tmp_path):
    cfg = load_config(write(tmp_path, f"[paths]\nvar = {tmp_path}/v\n"), environ={})
    assert cfg["ari.url"] == "http://127.0.0.1:8088/ari"
    assert cfg["ari.ping_interval"] == 10.0
    assert cfg["logging.max_bytes"] == 50 * 1024 * 1024
    assert cfg["paths.log"] == f"{tmp_path}/v/log"
    assert cfg["zmq.control"] == f"ipc://{tmp_path}/v/run/control.sock"
    assert cfg["files.endpoints"].endswith("conf/endpoints_pjsip.def")


def test_environment_overrides_file(tmp_path):
    path = write(tmp_path, "[ari]\nurl = http://127.0.0.1:1/ari\n")
    cfg = load_config(path, environ={"ARIMONITOR_ARI_URL": "http://127.0.0.1:2/ari",
                                     "ARIMONITOR_TRANSCODER_WORKERS": "3"})
    assert cfg["ari.url"] == "http://127.0.0.1:2/ari"
    assert cfg.transcoder_workers() == 3


@pytest.mark.parametrize("text, named", [
    ("[ari]\nping_interval = soon\n", "[ari] ping_interval"),
    ("[logging]\nmax_bytes = lots\n", "[logging] max_bytes"),
    ("[ari]\nurl = ftp://x\n", "[ari] url"),
    ("[zmq]\ncontrol = tcp://0.0.0.0:5555\n", "[zmq] control"),
    ("[ari]\nurll = http://x\n", "[ari] urll"),
    ("[aru]\nurl = http://x\n", "[aru]"),
    ("[console]\nmanager_host = 10.0.0.1\n", "[console] manager_host"),
])
def test_bad_value_names_the_key(tmp_path, text, named):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), environ={})
    assert named in str(err.value)


def test_password_file_readable_by_others_is_refused(tmp_path):
    path = write(tmp_path, "[ari]\npassword = s3cret-value\n", mode=0o644)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert "chmod 600" in str(err.value)
    assert "s3cret-value" not in str(err.value)
    os.chmod(path, 0o600)
    cfg = load_config(path, environ={})
    assert cfg["ari.password"] == "s3cret-value"
    assert cfg.display("ari.password") == "********"


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.ini", environ={})


def test_sample_config_lists_every_setting_with_its_default():
    text = (ROOT / "conf" / "arimonitor.ini").read_text(encoding="utf-8")
    sections = re.split(r"^\[(\w+)\]$", text, flags=re.MULTILINE)
    body = dict(zip(sections[1::2], sections[2::2]))
    for s in SETTINGS:
        assert f";{s.key} = {s.default}".rstrip() in [line.rstrip() for line in body[s.section].splitlines()], s.name
    # and the sample itself loads
    load_config(ROOT / "conf" / "arimonitor.ini", environ={})


@pytest.mark.parametrize("conv, good, bad", [
    (dt.seconds, [("5", 5.0), ("250ms", 0.25), ("2m", 120.0), ("1.5s", 1.5)], ["x", "-1", "5y"]),
    (dt.byte_size, [("1024", 1024), ("50MB", 52428800), ("512k", 524288)], ["big", "1.5MB"]),
    (dt.boolean, [("S", True), ("n", False), ("yes", True), ("off", False)], ["maybe", ""]),
    (dt.port_number, [("1101", 1101)], ["70000", "x"]),
])
def test_converters(conv, good, bad):
    for text, value in good:
        assert conv(text) == value
    for text in bad:
        with pytest.raises(ValueError):
            conv(text)


def test_a_typo_in_the_environment_is_refused_with_did_you_mean(tmp_path):
    ini = write_config(tmp_path)
    with pytest.raises(ConfigError, match="unknown environment variable ARIMONITOR_SIM_PROT; "
                                          "did you mean ARIMONITOR_SIM_PORT"):
        load_config(ini, environ={"ARIMONITOR_SIM_PROT": "9000"})
    with pytest.raises(ConfigError, match=r"unknown key \[sim\] prot .*did you mean port"):
        load_config(write_config(tmp_path, {"sim": {"prot": "9000"}}), environ={})


def test_the_test_suites_own_knobs_are_not_settings(tmp_path):
    """ARIMONITOR_TEST_* scale the fault runs and name the live suite's launcher; the processes
    a test starts inherit them and must still start."""
    assert not any(s.section == "test" for s in SETTINGS)
    cfg = load_config(write_config(tmp_path), environ={"ARIMONITOR_TEST_FAULT_FLOOD": "2000",
                                                       "ARIMONITOR_TEST_ASTERISK": "/x/instance.sh"})
    assert cfg is not None
    with pytest.raises(ConfigError, match="unknown environment variable ARIMONITOR_TESTS_X"):
        load_config(write_config(tmp_path), environ={"ARIMONITOR_TESTS_X": "1"})


def test_every_file_holding_a_secret_follows_one_rule(tmp_path):
    from arimonitor.config import secret_file_problems

    endpoints = tmp_path / "endpoints_pjsip.def"
    endpoints.write_text("#include sip/101.conf ;Endpoint:1013010 CLI:101 PW:s3cret\n")
    mq = tmp_path / "__MQSERVERS__.DEF"
    mq.write_text("[principal]\nhost=127.0.0.1\nqueue=q\npassword=guest\n")
    clients = tmp_path / "__CLIENTES__.DEF"
    clients.write_text("[101]\nnome=Acme\n")
    for path in (endpoints, mq, clients):
        path.chmod(0o644)
    cfg = load_config(write_config(tmp_path, {"files": {"endpoints": endpoints, "mqservers": mq,
                                                        "clients": clients}}), environ={})
    found = secret_file_problems(cfg)
    assert len(found) == 2 and "s3cret" not in " ".join(found)
    assert f"chmod 600 {endpoints}" in found[0] and f"chmod 600 {mq}" in found[1]
    endpoints.chmod(0o600)
    mq.chmod(0o600)
    assert secret_file_problems(cfg) == []


def test_stop_and_status_read_a_file_start_would_refuse(tmp_path):
    ini = write_config(tmp_path, {"ari": {"password": "x"}})
    ini.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(ini, environ={})
    assert load_config(ini, environ={}, check_private=False)["ari.password"] == "x"


@pytest.mark.parametrize(("name", "value"), [("ari.probe_interval", "0"), ("logging.metrics_interval", "0"),
                                             ("transcoder.bitrate", "999999"), ("ari.probe_interval", "999999999999d")])
def test_bounds_are_shared_by_the_file_and_the_environment(tmp_path, name, value):
    section, key = name.split(".")
    with pytest.raises(ConfigError, match=rf"\[{section}\] {key}.*{re.escape(repr(value))}"):
        load_config(write_config(tmp_path, {section: {key: value}}), environ={})
    with pytest.raises(ConfigError, match=rf"\[{section}\] {key}"):
        load_config(write_config(tmp_path), environ={f"ARIMONITOR_{section.upper()}_{key.upper()}": value})


def test_every_settable_value_has_bounds():
    for setting in SETTINGS:
        if setting.settable and setting.convert not in (dt.boolean, dt.log_level):
            assert hasattr(setting.convert, "describe"), setting.name


def test_the_readme_snippet_pasted_into_the_shipped_ini_works(tmp_path):
    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("Then in `conf/arimonitor.ini`")[1].split("\n\n")[1]
    assert snippet.lstrip().startswith("[ari]")
    ini = tmp_path / "arimonitor.ini"
    ini.write_text((ROOT / "conf" / "arimonitor.ini").read_text() + "\n"
                   + "\n".join(line.strip() for line in snippet.splitlines()).replace("<", "").replace(">", "") + "\n")
    ini.chmod(0o600)
    cfg = load_config(ini, environ={})
    assert (cfg["ari.url"], cfg["ari.user"], cfg["ami.enabled"]) == ("http://127.0.0.1:8088/ari", "arimonitor", True)
    assert cfg.source("ari.password") == "file"
    ini.write_text(ini.read_text() + "[ari]\nurl = http://10.0.0.9:8088/ari\n")
    with pytest.raises(ConfigError, match=r"\[ari\] url is set twice .*lines \d+ and \d+"):
        load_config(ini, environ={})
