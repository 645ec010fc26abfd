"""__MQSERVERS__.DEF: servers in order, defaults, and the reasons a server is skipped."""

from __future__ import annotations

from arimonitor.v27 import ERROR, WARNING, load_mqservers, parse_mqservers
from tests.support import FIXTURES


def test_v27_servers_in_order():
    for folder in ("v27", "v27-quirks"):
        loaded = load_mqservers(FIXTURES / folder / "__MQSERVERS__.DEF")
        assert loaded.problems == ()
        assert [(s.name, s.host, s.port, s.user, s.password, s.vhost, s.queue, s.line)
                for s in loaded.table] == [
            ("principal", "127.0.0.1", 5672, "guest", "guest", "/", "clicktocall", 3),
            ("reserva", "127.0.0.2", 5672, "guest", "guest", "/", "clicktocall", 11),
        ]


def test_password_not_in_repr():
    server = parse_mqservers(b"[a]\nhost=h\nqueue=q\npassword=s3cr3t\n").table[0]
    assert server.password == "s3cr3t"
    assert "s3cr3t" not in repr(server)


def test_defaults():
    (server,) = parse_mqservers(b"[a]\nhost=h\nqueue=q\n").table
    assert (server.port, server.user, server.password, server.vhost) == (5672, "guest", "guest",
                                                                         "/")


def test_non_numeric_port_skips_the_server():
    data = b"[bad]\nhost=h\nport=abc\nqueue=q\npassword=s3cr3t\n[good]\nhost=g\nqueue=q\n"
    loaded = parse_mqservers(data)
    assert [s.name for s in loaded.table] == ["good"]
    assert [(p.line, p.level) for p in loaded.problems] == [(3, ERROR)]
    assert "bad port" in loaded.problems[0].reason and "skipped" in loaded.problems[0].reason


def test_port_out_of_range_and_zero():
    for port in (b"0", b"70000", b"-1"):
        loaded = parse_mqservers(b"[a]\nhost=h\nqueue=q\nport=" + port + b"\n")
        assert loaded.table == ()
        assert [p.line for p in loaded.problems] == [4]


def test_missing_host_or_queue_skips_the_server():
    loaded = parse_mqservers(b"[a]\nport=1\n[b]\nhost=h\nqueue=\n")
    assert loaded.table == ()
    assert [(p.line, p.reason) for p in loaded.problems] == [
        (1, "server [a] has no host or queue; server skipped"),
        (3, "server [b] has no queue; server skipped"),
    ]


def test_unknown_key_is_a_warning_and_secrets_are_masked():
    loaded = parse_mqservers(b"[a]\nhots=h\nhost=h\nqueue=q\n\npasword=topsecret\n")
    assert len(loaded.table) == 1
    assert [(p.line, p.level) for p in loaded.problems] == [(2, WARNING), (6, WARNING)]
    assert loaded.problems[1].text == "pasword=***"


def test_crlf_and_bom():
    (server,) = parse_mqservers(b"\xef\xbb\xbf[a]\r\nhost = h \r\nqueue=q\r\nport=5673\r\n").table
    assert (server.name, server.host, server.port) == ("a", "h", 5673)


def test_no_value_is_ever_echoed_from_this_file():
    loaded = parse_mqservers(b"[a\nxyzzy=hunter2\n[b]\nhost=h\nqueue=q\nwhatever=hunter3\n")
    assert [p.line for p in loaded.problems] == [1, 2, 6]
    assert all("hunter" not in p.text and "hunter" not in p.reason for p in loaded.problems)
    assert loaded.problems[1].text == "xyzzy=***"
