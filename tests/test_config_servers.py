"""[ari:NAME] / [ami:NAME]: further Asterisk servers, checked through the one settings table."""

from __future__ import annotations

import os

import pytest

from arimonitor.config import ConfigError, load_config
from arimonitor.supervision import Tree


def write(tmp_path, text: str, mode: int = 0o600):
    path = tmp_path / "arimonitor.ini"
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


TWO = """[ari]
url = http://127.0.0.1:8088/ari
server_id = pbx1
password = one
ping_interval = 7s
[ari:pbx2]
url = http://127.0.0.1:9088/ari
password = two
[ami:pbx2]
enabled = yes
port = 6038
"""


def test_named_sections_are_servers_in_file_order_and_fill_gaps_from_ari(tmp_path):
    cfg = load_config(write(tmp_path, TWO), environ={})
    assert cfg.servers == ["pbx1", "pbx2"]
    pbx2 = cfg.for_server(1)
    assert pbx2["ari.server_id"] == "pbx2" and cfg.for_server("pbx2")["ari.url"] == "http://127.0.0.1:9088/ari"
    assert pbx2["ari.password"] == "two" and pbx2["ami.port"] == 6038 and pbx2["ami.enabled"] is True
    assert pbx2["ari.ping_interval"] == 7.0          # left out: the [ari] value
    assert cfg.for_server(0) is cfg and cfg["ari.password"] == "one" and cfg["ami.port"] == 5038
    # the rest of the config is shared
    assert pbx2["paths.database"] == cfg["paths.database"]
    assert cfg.with_overrides({"logging.level": "DEBUG"}).servers == ["pbx1", "pbx2"]


def test_one_reader_per_server_under_supervisord(tmp_path):
    tree = Tree(load_config(write(tmp_path, TWO), environ={}), demo=False)
    assert tree.environment()["ARIMONITOR_READERS"] == "2"
    assert {"ari-reader_00", "ari-reader_01"} <= set(tree.expected())
    single = Tree(load_config(write(tmp_path, "[ari]\nurl = http://127.0.0.1:1/ari\n"), environ={}), demo=False)
    assert single.environment()["ARIMONITOR_READERS"] == "1"
    assert [n for n in single.expected() if n.startswith("ari-reader")] == ["ari-reader_00"]


@pytest.mark.parametrize("text, named", [
    ("[ari:pbx2]\nurl = http://127.0.0.1:1/ari\nurll = x\n", "[ari:pbx2] urll"),
    ("[ari:pbx2]\nurl = http://127.0.0.1:1/ari\nping_interval = soon\n", "[ari:pbx2] ping_interval"),
    ("[ari:pbx2]\npassword = x\n", "[ari:pbx2] url"),
    ("[ami:pbx2]\nenabled = yes\n", "no [ari:pbx2]"),
    ("[ami:pbx2]\nhost = 10.0.0.9\n[ari:pbx2]\nurl = http://127.0.0.1:1/ari\n", "[ami:pbx2] host"),
    ("[ari:pbx2]\nurl = http://127.0.0.1:1/ari\nserver_id = other\n", "[ari:pbx2] server_id"),
    ("[logging:pbx2]\nlevel = INFO\n", "[logging:pbx2]"),
    ("[ari:pbx 2]\nurl = http://127.0.0.1:1/ari\n", "[ari:pbx 2]"),
    ("[ari]\nserver_id = pbx2\n[ari:pbx2]\nurl = http://127.0.0.1:1/ari\n", "named twice"),
    ("[ari]\nserver_id = two words\n", "[ari] server_id"),
])
def test_a_bad_server_section_names_where(tmp_path, text, named):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), environ={})
    assert named in str(err.value)


def test_a_named_servers_password_makes_the_file_private(tmp_path):
    path = write(tmp_path, "[ari:pbx2]\nurl = http://127.0.0.1:1/ari\npassword = s3cret\n", mode=0o644)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert "chmod 600" in str(err.value) and "s3cret" not in str(err.value)


def test_an_unknown_server_is_refused_by_name_and_number(tmp_path):
    cfg = load_config(write(tmp_path, TWO), environ={})
    for wrong in ("pbx9", 2, -1):
        with pytest.raises(ConfigError, match="pbx1, pbx2"):
            cfg.for_server(wrong)


def test_host_servers_names_consecutive_known_servers(tmp_path):
    cfg = load_config(write(tmp_path, TWO + "[ari:pbx3]\nurl = http://127.0.0.1:9089/ari\n"), environ={})
    assert cfg.reader_servers() == [0, 1, 2]
    assert cfg.with_overrides({"host.servers": "pbx3, PBX2"}).reader_servers() == [1, 2]
    with pytest.raises(ConfigError, match=r"\[host\] servers.*no server 'pbx9' \(servers: pbx1, pbx2, pbx3\)"):
        cfg.with_overrides({"host.servers": "pbx2,pbx9"})
    with pytest.raises(ConfigError, match="not consecutive"):
        cfg.with_overrides({"host.servers": "pbx1,pbx3"})
