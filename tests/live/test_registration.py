"""Scenarios 1-2: registrations, as Asterisk's `pjsip show contacts` has them, and as arimonitor
shows them (`arictl list`, `arictl ips`)."""

from __future__ import annotations

import pytest

from tests.live.asterisk import free_udp_port
from tests.live.monitor import holds
from tests.support import eventually_assert

pytestmark = pytest.mark.live


def endpoint(monitor, ep_id: str) -> dict:
    rows = monitor.arictl("list")["data"]
    return next(r for r in rows if r["id"] == ep_id)


@pytest.fixture(scope="module")
def watched(asterisk, phones, monitor):
    """1003010 registers before arimonitor starts; then arimonitor starts."""
    phones.register("1003010", contact_port=free_udp_port())
    assert "1003010" in asterisk.contacts()
    monitor.start()
    return monitor


def test_a_phone_registered_before_start_is_online_with_its_address_from_ami(asterisk, watched):
    truth = asterisk.contacts()["1003010"]

    def online():
        row = endpoint(watched, "1003010")
        assert row["state"] == "online"
        assert (row["ip"], row["port"]) == (truth.ip, truth.port)
        assert row["source"] == "ami"
    eventually_assert(online, timeout=15)
    assert watched.arictl("status")["data"]["last_resync"]["contacts_source"] == "ami"


def test_registration_moves_with_the_phone_and_feeds_the_remote_ip_registry(asterisk, phones, watched):
    first = free_udp_port()
    phones.register("1013015", contact_port=first)
    assert asterisk.contacts()["1013015"].port == first

    def at(ip, port):
        def check():
            row = endpoint(watched, "1013015")
            assert row["state"] == "online"
            assert (row["ip"], row["port"]) == (ip, port)
            # from the registration's event, or from AMI when a resync read it first
            assert row["source"] in ("event", "ami")
        return check
    eventually_assert(at("127.0.0.1", first), timeout=10)

    # re-registration from another port: Asterisk replaces the contact (max_contacts=1)
    second = free_udp_port()
    phones.register("1013015", contact_port=second)
    truth = asterisk.contacts()["1013015"]
    assert (truth.ip, truth.port) == ("127.0.0.1", second)
    eventually_assert(at("127.0.0.1", second), timeout=10)
    assert endpoint(watched, "1013015")["contact_status"] != "Removed"

    # ... and from another address
    third = free_udp_port()
    phones.register("1013015", contact_port=third, ip="127.0.0.2")
    truth = asterisk.contacts()["1013015"]
    assert (truth.ip, truth.port) == ("127.0.0.2", third)
    eventually_assert(at("127.0.0.2", third), timeout=10)
    assert endpoint(watched, "1013015")["contact_status"] != "Removed"

    def registry():
        ips = {r["ip"]: r for r in watched.arictl("ips")["data"]}
        assert "1013015" in ips["127.0.0.2"]["endpoints"]
        assert "1013015" in ips["127.0.0.1"]["endpoints"]
    eventually_assert(registry, timeout=10)


def test_unregistration_takes_the_phone_offline_and_keeps_its_address_as_last_seen(asterisk, phones, watched):
    port = free_udp_port()
    phones.register("1013020", contact_port=port)
    eventually_assert(lambda: holds(endpoint(watched, "1013020")["state"] == "online"), timeout=10)
    phones.unregister("1013020", contact_port=port)
    assert "1013020" not in asterisk.contacts()

    def offline():
        row = endpoint(watched, "1013020")
        assert row["state"] == "offline"
        assert (row["ip"], row["port"]) == (None, None), "an unregistered phone has no current address"
        assert row["last_seen"] == f"127.0.0.1:{port}"
    eventually_assert(offline, timeout=10)


def test_qualify_reachable_then_unreachable(asterisk, phones, watched):
    # 1123010 is qualified every 5 s: a phone that answers OPTIONS is Reachable
    uas_port = phones.answering("1123010")
    eventually_assert(lambda: holds(asterisk.contacts()["1123010"].status == "Avail"), timeout=15)

    def seen(peer, state):
        def check():
            row = endpoint(watched, "1123010")
            assert (row["peer_status"], row["state"]) == (peer, state)
            assert row["port"] == uas_port
        return check
    eventually_assert(seen("Reachable", "online"), timeout=10)

    # the phone dies without unregistering: the next qualify finds it Unreachable
    uas = phones.uas["1123010"]
    uas.kill()
    uas.wait()
    eventually_assert(lambda: holds(asterisk.contacts()["1123010"].status == "Unavail"), timeout=20)
    eventually_assert(seen("Unreachable", "offline"), timeout=10)
