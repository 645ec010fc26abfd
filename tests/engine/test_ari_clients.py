"""ARI REST client, AMI client and contact parsing, against the captured Asterisk output."""

from __future__ import annotations

import socket
import threading

import pytest

from arimonitor.ari.ami import (
    AmiClient,
    AmiError,
    contacts_from_messages,
    parse_messages,
)
from arimonitor.ari.contacts import (
    ContactSourceError,
    cli_contacts,
    parse_cli_contacts,
    parse_contact_uri,
)
from arimonitor.ari.rest import AriHttpError, AriRest, AriUnavailable
from arimonitor.sim.testing import SimServer
from tests.support import ARI, free_port

TRACES = ARI / "traces"


@pytest.mark.parametrize(("uri", "expected"), [
    ("sip:1003000@127.0.0.1:5071;transport=UDP", ("127.0.0.1", 5071)),
    ("sips:1003000@[2001:db8::5]:5061;transport=TLS", ("2001:db8::5", 5061)),
    ("<sip:1003000@10.0.0.5>", ("10.0.0.5", None)),
    ("sip:10.1.2.3:5062", ("10.1.2.3", 5062)),
    ("sip:1003000@phone.example.com:5060", (None, 5060)),
    ("garbage", (None, None)),
    ("", (None, None)),
])
def test_contact_uri(uri, expected):
    assert parse_contact_uri(uri) == expected


def test_cli_contacts_from_the_capture():
    contacts = parse_cli_contacts((TRACES / "cli_pjsip_show_contacts.txt").read_text())
    assert [(c.endpoint, c.ip, c.port, c.status, c.source) for c in contacts] == [
        ("1003000", "127.0.0.1", 5181, "NonQual", "cli"),
        ("1013010", "127.0.0.2", 5281, "NonQual", "cli"),
        ("1123000", "127.0.0.3", 5282, "NonQual", "cli")]


def test_cli_contacts_runs_an_argument_list_and_reports_failure(tmp_path):
    fake = tmp_path / "asterisk"
    fake.write_text("#!/bin/sh\n[ \"$1\" = -rx ] && [ \"$2\" = 'pjsip show contacts' ] && "
                    f"cat {TRACES / 'cli_pjsip_show_contacts.txt'} && exit 0\nexit 3\n")
    fake.chmod(0o755)
    assert len(cli_contacts(str(fake))) == 3
    with pytest.raises(ContactSourceError, match="No such file|not found|Errno"):
        cli_contacts(str(tmp_path / "missing"))


def test_ami_capture_parses_into_contacts():
    data = (TRACES / "ami_pjsipshowcontacts.txt").read_bytes()
    messages, rest = parse_messages(data)
    assert rest.strip() == b""
    contacts = contacts_from_messages(messages)
    assert [(c.endpoint, c.ip, c.port, c.roundtrip_usec, c.user_agent) for c in contacts] == [
        ("1003000", "127.0.0.1", 5181, None, "SIPp-test"),
        ("1013010", "127.0.0.2", 5281, None, "SIPp-test"),
        ("1123000", "127.0.0.3", 5282, None, "SIPp-test")]


def _fake_ami(answer_login: bytes) -> int:
    """A one-shot AMI server: banner, login answer, then the captured contact list."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    capture = (TRACES / "ami_pjsipshowcontacts.txt").read_bytes()

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server:
            conn.sendall(b"Asterisk Call Manager/9.0.0\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(4096)
            assert b"Secret: s3cret" in buf
            conn.sendall(answer_login)
            if b"Success" not in answer_login:
                return
            buf = b""
            while b"PJSIPShowContacts" not in buf:
                buf += conn.recv(4096)
            conn.sendall(capture)
            conn.recv(4096)

    threading.Thread(target=serve, daemon=True).start()
    return port


def test_ami_client_logs_in_and_lists_contacts():
    port = _fake_ami(b"Response: Success\r\nActionID: l1\r\nMessage: Authentication accepted\r\n\r\n")
    client = AmiClient("127.0.0.1", port, "arimonitor", "s3cret", timeout=5)
    assert "s3cret" not in repr(client)
    assert [c.endpoint for c in client.pjsip_show_contacts()] == ["1003000", "1013010", "1123000"]


def test_ami_client_says_why_login_failed_without_the_secret():
    port = _fake_ami(b"Response: Error\r\nActionID: l1\r\nMessage: Authentication failed\r\n\r\n")
    with pytest.raises(AmiError) as info:
        AmiClient("127.0.0.1", port, "arimonitor", "s3cret", timeout=5).pjsip_show_contacts()
    assert "Authentication failed" in str(info.value) and "s3cret" not in str(info.value)
    with pytest.raises(AmiError, match="refused|Errno"):
        AmiClient("127.0.0.1", free_port(), "u", "p", timeout=1).pjsip_show_contacts()


def test_rest_client_errors_are_typed():
    with SimServer(endpoints=["1013010"]) as sim:
        rest = AriRest(sim.url, sim.user, sim.password, timeout=2)
        assert rest.asterisk_info()["system"]["entity_id"]
        assert [e["resource"] for e in rest.endpoints()] == ["1013010"]
        with pytest.raises(AriHttpError) as info:
            rest.continue_in_dialplan("no-such-channel")
        assert info.value.status == 404
        bad = AriRest(sim.url, sim.user, "wrong", timeout=2)
        with pytest.raises(AriHttpError) as info:
            bad.channels()
        assert info.value.status == 401 and "wrong" not in str(info.value) and "wrong" not in repr(bad)
    with pytest.raises(AriUnavailable, match="unavailable"):
        AriRest(f"http://127.0.0.1:{free_port()}/ari", "u", "p", timeout=1).channels()


def test_both_ari_clients_map_errors_the_same_way():
    """AriRest (requests) and LeanAri (http.client, the click-to-call hot path): one mapping."""
    from arimonitor.ari.rest import AriAuthError
    from arimonitor.clicktocall.ari_http import LeanAri

    with SimServer(endpoints=["1013010"]) as sim:
        for make in (AriRest, LeanAri):
            good, bad = make(sim.url, sim.user, sim.password, 2), make(sim.url, sim.user, "wrong", 2)
            try:
                with pytest.raises(AriHttpError) as gone:
                    good.post("/channels/no-such-channel/continue")
                assert gone.value.status == 404 and not isinstance(gone.value, AriAuthError), make
                with pytest.raises(AriAuthError) as refused:
                    bad.get("/channels")
                assert refused.value.status == 401 and refused.value.user == sim.user, make
                assert "wrong" not in str(refused.value)
            finally:
                good.close()
                bad.close()
    for make in (AriRest, LeanAri):
        with pytest.raises(AriUnavailable) as down:
            make(f"http://127.0.0.1:{free_port()}/ari", "u", "p", 1).get("/channels")
        assert down.value.kind == "refused", make
