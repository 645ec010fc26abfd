"""Where an endpoint's address comes from: SIP contact URIs, and the CLI's contact listing.

Real ARI endpoint objects carry no address (shared/ari/NOTES.md). Live, it comes from
ContactStatusChange.contact_info.uri; at start-up from AMI PJSIPShowContacts (ami.py) or from
`asterisk -rx 'pjsip show contacts'` (this module), run as an argument list, never a shell.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from dataclasses import dataclass

# Where an address came from, as shown to operators.
SOURCE_EVENT = "event"     # ContactStatusChange
SOURCE_AMI = "ami"         # AMI PJSIPShowContacts
SOURCE_CLI = "cli"         # asterisk -rx 'pjsip show contacts'
SOURCE_UNKNOWN = "unknown"  # nothing yet: wait for the next contact event


@dataclass(frozen=True, slots=True)
class Contact:
    endpoint: str
    uri: str
    ip: str | None
    port: int | None
    status: str = ""
    roundtrip_usec: int | None = None
    user_agent: str = ""
    source: str = SOURCE_EVENT


# sip:user@host:port;params  /  sips:host  /  sip:user@[v6]:port ; the user part is optional.
_URI = re.compile(r"^\s*<?sips?:(?:[^@;>]*@)?(\[[0-9A-Fa-f:.]+\]|[^:;>?\s]+)(?::(\d+))?")


def parse_contact_uri(uri: str) -> tuple[str | None, int | None]:
    """`sip:1003000@127.0.0.1:5071;transport=UDP` -> ("127.0.0.1", 5071); IPv6 in brackets too.

    A host name (not an IP) gives (None, port): the registry tracks IPs only.
    """
    match = _URI.match(uri or "")
    if not match:
        return None, None
    host, port_text = match.group(1), match.group(2)
    port = int(port_text) if port_text and int(port_text) <= 65535 else None
    host = host[1:-1] if host.startswith("[") else host
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        return None, port


def parse_rtt(text: str | int | None) -> int | None:
    """ARI/AMI round-trip: "816" -> 816; "N/A", "", "nan" -> None."""
    try:
        value = int(float(text))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return value if value >= 0 else None


# "  Contact:  1003000/sip:1003000@127.0.0.1:5181;transport=U 072199940f NonQual         nan"
_CLI_LINE = re.compile(r"^\s*Contact:\s+(?P<aor>[^/\s]+)/(?P<uri>\S+)\s+(?P<hash>\S+)\s+"
                       r"(?P<status>\S+)\s+(?P<rtt>\S+)\s*$")


def parse_cli_contacts(text: str) -> list[Contact]:
    """Rows of `pjsip show contacts`; the header row (`<Aor/ContactUri...>`) does not match.

    The CLI cuts long URIs (`transport=U`) but IP and port survive; the AOR stands for the
    endpoint (arimonitor's endpoints have one AOR of the same name).
    """
    contacts = []
    for line in text.splitlines():
        match = _CLI_LINE.match(line)
        if not match or match.group("aor").startswith("<"):
            continue
        ip, port = parse_contact_uri(match.group("uri"))
        rtt_ms = match.group("rtt")
        try:
            rtt = int(float(rtt_ms) * 1000) if rtt_ms.lower() != "nan" else None
        except ValueError:
            rtt = None
        contacts.append(Contact(match.group("aor"), match.group("uri"), ip, port,
                                match.group("status"), rtt, "", SOURCE_CLI))
    return contacts


class ContactSourceError(Exception):
    """The contact source could not be read; the reason is for the operator."""


def cli_contacts(asterisk_bin: str, timeout: float = 10.0) -> list[Contact]:
    """Run `asterisk -rx 'pjsip show contacts'` (argument list, no shell) and parse it."""
    try:
        done = subprocess.run([asterisk_bin, "-rx", "pjsip show contacts"], capture_output=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ContactSourceError(f"{asterisk_bin} -rx 'pjsip show contacts': {exc}") from None
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()[:200]
        raise ContactSourceError(f"{asterisk_bin} -rx 'pjsip show contacts' exited "
                                 f"{done.returncode}: {err}")
    return parse_cli_contacts(done.stdout.decode(errors="replace"))
