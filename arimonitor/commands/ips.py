"""Console command `ips` and `ips whitelist add|remove IP`: the remote-IP registry (v2.7 REMOTEIPS).

Every address a contact registered from: first and last seen, the endpoints that used it, how
it was first discovered (event, ami, cli) and the whitelist flag. A whitelist change is written
to SQLite before it is acknowledged, so it survives an engine restart.
"""

from __future__ import annotations

import ipaddress
import time

from arimonitor import protocol
from arimonitor.commands import render
from arimonitor.commands.registry import Arg, CommandError, Option, Registry, Reply


def _ip(text: str) -> str:
    return str(ipaddress.ip_address(text.strip()))


def _address_order(text: str) -> tuple[int, int]:
    address = ipaddress.ip_address(text)
    return address.version, int(address)


def _clock(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


def register(registry: Registry) -> None:
    @registry.command(
        "ips", category="endpoints", summary="remote IPs: first/last seen, endpoints, whitelist",
        args=[Arg("action", "whitelist: change an IP's flag", optional=True, choices=("whitelist",)),
              Arg("op", "add or remove", optional=True, choices=("add", "remove")),
              Arg("ip", "the address", optional=True, convert=_ip)],
        options=[Option("whitelisted", "only whitelisted IPs", flag=True)],
        examples=["ips", "ips whitelist", "ips whitelist add 203.0.113.7",
                  "ips whitelist remove 10.0.0.5"],
        description="The whitelist flag is stored in SQLite (kept across restarts). An address may "
                    "be whitelisted before it ever registers.",
        privileged=lambda kw: kw.get("action") == "whitelist" and kw.get("op") is not None)
    def ips(ctx, action=None, op=None, ip=None, whitelisted=False) -> Reply:
        if action is None or op is None:  # `ips whitelist` alone: the whitelist
            whitelisted = whitelisted or action == "whitelist"
            # by address, as numbers: 10.0.0.9 before 10.0.0.10; IPv4 before IPv6
            rows = sorted((r for r in ctx.remote_ips() if r["whitelist"] or not whitelisted),
                          key=lambda r: _address_order(r["ip"]))
            now = time.time()
            text = render.table(
                [(r["ip"], _clock(r["first_seen"]),
                  render.age(r["last_seen"], now) if r["last_seen"] else "never registered",
                  ", ".join(r["endpoints"]) or "-", r["whitelist"], r["source"] or "-") for r in rows],
                ("IP", "FIRST SEEN", "LAST SEEN", "ENDPOINTS", "WHITELIST", "FOUND BY"),
                title="whitelisted remote ips" if whitelisted else "remote ips",
                empty="no whitelisted IPs" if whitelisted else "no remote IPs")
            return Reply(rows, text)
        if ip is None:
            raise CommandError(protocol.E_BAD_ARGUMENTS, "usage: ips whitelist [add|remove IP]")
        record = next((r for r in ctx.remote_ips() if r["ip"] == ip), None)
        wanted = op == "add"
        if record is None and not wanted:
            raise CommandError(protocol.E_NOT_FOUND, f"{ip} is not on the whitelist; 'ips whitelist' lists it")
        if record is not None and record["whitelist"] == wanted:
            return Reply(record, f"{ip} is already {'on' if wanted else 'off'} the whitelist")
        ahead = record is None
        record = ctx.whitelist(ip, wanted)
        text = f"{ip} {'added to' if wanted else 'removed from'} the whitelist (saved)"
        return Reply(record, text + ("; it has not registered here yet" if ahead else ""))
