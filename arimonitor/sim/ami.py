"""A sliver of AMI: Login, Ping, Logoff and PJSIPShowContacts, as Asterisk 22 answers them.

The engine reads contact addresses of endpoints already registered at its start from
PJSIPShowContacts (ARI endpoint objects carry no address, NOTES.md). Lines end in CRLF.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable

from arimonitor.sim.core import Pbx

log = logging.getLogger("arimonitor.sim.ami")
BANNER = "Asterisk Call Manager/9.0.0\r\n"


def _block(fields: list[tuple[str, str]]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n").encode("utf-8")


def contacts_answer(pbx: Pbx, action_id: str) -> bytes:
    head = [("Response", "Success")] + ([("ActionID", action_id)] if action_id else [])
    out = [_block(head + [("EventList", "start"),
                          ("Message", "A listing of Contacts follows, presented as ContactList events")])]
    registered = [e for e in pbx.endpoints.values() if e.registered]
    for ep in registered:
        aid = [("ActionID", action_id)] if action_id else []
        out.append(_block([("Event", "ContactList")] + aid + [
            ("ObjectType", "contact"), ("ObjectName", f"{ep.resource};@{hashlib.md5(ep.uri.encode()).hexdigest()}"),
            ("ViaAddr", ep.ip), ("QualifyTimeout", "3.000000"), ("Qualify2xxOnly", "false"),
            ("CallId", ep.call_id), ("RegServer", ""), ("PruneOnBoot", "no"), ("Path", ""),
            ("Endpoint", ep.resource), ("ViaPort", str(ep.port)), ("AuthenticateQualify", "no"),
            ("Uri", ep.uri), ("QualifyFrequency", "60" if ep.qualify else "0"),
            ("UserAgent", ep.user_agent), ("ExpirationTime", str(int(time.time()) + 3600)),
            ("OutboundProxy", ""),
            ("Status", ("Reachable" if ep.reachable else "Unreachable") if ep.qualify else "NonQualified"),
            ("RoundtripUsec", "N/A" if not ep.qualify else "1000"),
        ]))
    aid = [("ActionID", action_id)] if action_id else []
    out.append(_block([("Event", "ContactListComplete")] + aid + [
        ("EventList", "Complete"), ("ListItems", str(len(registered)))]))
    return b"".join(out)


class AmiServer:
    def __init__(self, pbx_getter: Callable[[], Pbx], user: str, password: str) -> None:
        self.pbx_getter = pbx_getter
        self.user, self.password = user, password
        self.server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._session, host, port, reuse_address=True)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER.encode())
        logged_in = False
        try:
            while True:
                action = await self._read_action(reader)
                if action is None:
                    break
                name = action.get("action", "").lower()
                aid = action.get("actionid", "")
                head = [("ActionID", aid)] if aid else []
                if name == "login":
                    logged_in = (action.get("username"), action.get("secret")) == (self.user, self.password)
                    writer.write(_block([("Response", "Success" if logged_in else "Error")] + head + [
                        ("Message", "Authentication accepted" if logged_in else "Authentication failed")]))
                    if not logged_in:
                        break
                elif name == "logoff":
                    writer.write(_block([("Response", "Goodbye")] + head + [
                        ("Message", "Thanks for all the fish.")]))
                    break
                elif not logged_in:
                    writer.write(_block([("Response", "Error")] + head + [("Message", "Permission denied")]))
                elif name == "ping":
                    writer.write(_block([("Response", "Success")] + head + [
                        ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")]))
                elif name == "pjsipshowcontacts":
                    writer.write(contacts_answer(self.pbx_getter(), aid))
                else:
                    writer.write(_block([("Response", "Error")] + head + [("Message", "Invalid/unknown command")]))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            try:
                await writer.drain()
            except ConnectionError:
                pass
            writer.close()

    @staticmethod
    async def _read_action(reader: asyncio.StreamReader) -> dict[str, str] | None:
        fields: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if not line:
                return None
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if not text:
                if fields:
                    return fields
                continue
            key, _, value = text.partition(":")
            fields[key.strip().lower()] = value.strip()
