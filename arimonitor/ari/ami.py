"""A minimal AMI client: log in, ask PJSIPShowContacts, read the ContactList events, log off.

Only what the engine needs at start-up to learn the addresses of endpoints that registered
before it started (ARI endpoint objects carry none). AMI messages are `Key: Value` lines ending
in CRLF, one blank line between messages (see shared/ari/traces/ami_pjsipshowcontacts.txt).
The secret is sent once in the Login action and never logged.
"""

from __future__ import annotations

import socket
import time

from arimonitor.ari.contacts import SOURCE_AMI, Contact, parse_contact_uri, parse_rtt


class AmiError(Exception):
    """AMI refused or broke; the message is for the operator (it never holds the secret)."""


def parse_messages(data: bytes) -> tuple[list[dict[str, str]], bytes]:
    """Split complete messages off `data`; return them and the unfinished rest.

    Tolerates bare LF endings; a line without `:` is kept under the key "" (AMI's banner).
    """
    text = data.replace(b"\r\n", b"\n")
    messages = []
    while b"\n\n" in text:
        block, text = text.split(b"\n\n", 1)
        message: dict[str, str] = {}
        for line in block.decode("utf-8", errors="replace").split("\n"):
            key, sep, value = line.partition(":")
            if sep:
                message.setdefault(key.strip(), value.strip())
            elif line.strip():
                message.setdefault("", line.strip())
        if message:
            messages.append(message)
    return messages, text


def contacts_from_messages(messages: list[dict[str, str]]) -> list[Contact]:
    contacts = []
    for message in messages:
        if message.get("Event") != "ContactList":
            continue
        uri = message.get("Uri", "")
        ip, port = parse_contact_uri(uri)
        endpoint = message.get("Endpoint") or message.get("ObjectName", "").split(";")[0]
        contacts.append(Contact(endpoint, uri, ip, port, message.get("Status", ""),
                                parse_rtt(message.get("RoundtripUsec")),
                                message.get("UserAgent", ""), SOURCE_AMI))
    return contacts


class AmiClient:
    def __init__(self, host: str, port: int, user: str, secret: str, timeout: float = 5.0):
        self.host, self.port, self.user = host, port, user
        self._secret = secret
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"AmiClient({self.host}:{self.port}, user={self.user!r})"

    def pjsip_show_contacts(self) -> list[Contact]:
        """One short session; raises AmiError with a reason an operator can act on."""
        deadline = time.monotonic() + self.timeout
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                reader = _Reader(sock, deadline)
                reader.banner()
                login = self._action(sock, reader, "Login", "l1",
                                     Username=self.user, Secret=self._secret, Events="off")
                if login.get("Response") != "Success":
                    raise AmiError(f"AMI login as {self.user!r} refused: {login.get('Message', '?')}")
                first = self._action(sock, reader, "PJSIPShowContacts", "c1")
                if first.get("Response") != "Success":
                    raise AmiError(f"PJSIPShowContacts refused: {first.get('Message', '?')}")
                collected = []
                while True:
                    message = reader.next("c1")
                    collected.append(message)
                    if message.get("Event") == "ContactListComplete":
                        break
                try:
                    _send(sock, "Logoff", "o1")
                except OSError:
                    pass  # we have what we came for
                return contacts_from_messages(collected)
        except (OSError, TimeoutError) as exc:
            raise AmiError(f"AMI {self.host}:{self.port}: {exc or type(exc).__name__}") from None

    def _action(self, sock: socket.socket, reader: _Reader, action: str, action_id: str,
                **fields: str) -> dict[str, str]:
        _send(sock, action, action_id, **fields)
        return reader.next(action_id)


def _send(sock: socket.socket, action: str, action_id: str, **fields: str) -> None:
    lines = [f"Action: {action}", f"ActionID: {action_id}"]
    lines += [f"{key}: {value}" for key, value in fields.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


class _Reader:
    def __init__(self, sock: socket.socket, deadline: float):
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""
        self.pending: list[dict[str, str]] = []

    def banner(self) -> str:
        # "Asterisk Call Manager/9.0.0\r\n": one line, not a blank-line-terminated message.
        while b"\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode(errors="replace").strip()

    def next(self, action_id: str) -> dict[str, str]:
        while True:
            while self.pending:
                message = self.pending.pop(0)
                if message.get("ActionID") == action_id:
                    return message
            self._fill()
            messages, self.buffer = parse_messages(self.buffer)
            self.pending.extend(messages)

    def _fill(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete answer in time")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise AmiError("AMI closed the connection")
        self.buffer += chunk
