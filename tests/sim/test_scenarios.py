"""Demo and load traffic, determinism, the AMI answer, the .DEF endpoint ids."""

from __future__ import annotations

import socket

from arimonitor.sim.server import endpoints_from_def
from arimonitor.sim.testing import SimServer
from tests.sim.wsclient import EventStream
from tests.support import FIXTURES, eventually


def test_demo_traffic_is_varied_and_valid(apidocs) -> None:
    with SimServer(time_scale=0.01, seed=7) as sim:
        stream = EventStream(sim.ws_url, sim.user, sim.password)
        try:
            eventually(lambda: sim.control.state()["connections"])
            sim.control.demo(True)
            wanted = {"PeerStatusChange", "ContactStatusChange", "Dial", "StasisStart", "ChannelDestroyed"}
            stream.wait_for(lambda evs: wanted <= {e["type"] for e in evs}, timeout=20)
            sim.control.demo(False)
            events = stream.snapshot()
            causes = {e["cause"] for e in events if e["type"] == "ChannelDestroyed"}
            assert causes  # answered (16), busy (17) or unanswered (19) calls
            for event in events:
                assert apidocs.check_message(event) == [], event
        finally:
            stream.close()


def test_load_mode() -> None:
    with SimServer(time_scale=0.01) as sim:
        stream = EventStream(sim.ws_url, sim.user, sim.password)
        try:
            eventually(lambda: sim.control.state()["connections"])
            sim.control.load(endpoints=50, calls_per_second=200, talk=1.0)
            stream.wait_type("ChannelDestroyed", 20, timeout=10)
            stopped = sim.control.load_stop()["stopped"]
            assert stopped["endpoints"] == 50 and stopped["calls"] > 0
        finally:
            stream.close()


def test_same_seed_same_traffic() -> None:
    def run() -> list[tuple]:
        with SimServer(time_scale=0.001, seed=3) as sim:
            sim.control.demo(True)
            eventually(lambda: sim.control.state()["events_emitted"] > 30, timeout=10)
            sim.control.demo(False)
            events = sim.control.events()[:30]
            return [(e["type"], e.get("endpoint", {}).get("resource"), e.get("contact_info", {}).get("uri"))
                    for e in events]

    assert run() == run()


def test_ami_pjsipshowcontacts() -> None:
    with SimServer(endpoints=["1003000", "1013010"], ami=True) as sim:
        sim.control.register("1003000", "127.0.0.2", 5181)
        with socket.create_connection(("127.0.0.1", sim.ami_port), timeout=5) as sock:
            sock.sendall(f"Action: Login\r\nUsername: {sim.user}\r\nSecret: {sim.password}\r\n\r\n".encode())
            sock.sendall(b"Action: PJSIPShowContacts\r\nActionID: c1\r\n\r\n")
            data = b""
            while b"ContactListComplete" not in data or not data.endswith(b"\r\n\r\n"):
                chunk = sock.recv(65536)
                assert chunk
                data += chunk
        text = data.decode()
        assert text.startswith("Asterisk Call Manager/")
        assert "Response: Success\r\nActionID: c1\r\nEventList: start" in text
        assert "Endpoint: 1003000\r\n" in text and "ViaAddr: 127.0.0.2\r\n" in text
        assert "Uri: sip:1003000@127.0.0.2:5181;transport=UDP\r\n" in text
        assert "ListItems: 1\r\n" in text and "1013010" not in text


def test_ami_refuses_bad_login() -> None:
    with SimServer(ami=True) as sim:
        with socket.create_connection(("127.0.0.1", sim.ami_port), timeout=5) as sock:
            sock.sendall(b"Action: Login\r\nUsername: x\r\nSecret: y\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        assert b"Response: Error" in data


def test_endpoint_ids_from_def(tmp_path) -> None:
    path = tmp_path / "endpoints_pjsip.def"
    path.write_bytes("\ufeff#include pjsip/1013010.pjsip ; Endpoint:1013010 CLI:101 TYPE:condominio\r\n"
                     "#include pjsip/x.pjsip ;\tendpoint:\t1123000\tcli:112\r\n; nothing here\r\n"
                     .encode("utf-8"))
    assert endpoints_from_def(path) == [("1013010", "101"), ("1123000", "112")]
    assert endpoints_from_def(tmp_path / "missing.def") == []
    for fixture in FIXTURES.glob("**/endpoints_pjsip*.def"):
        assert endpoints_from_def(fixture)  # the shared fixtures load too
