"""A private real Asterisk for the live tests, started through the launcher that
ARIMONITOR_TEST_ASTERISK names (an instance.sh-compatible script), and what it says is true:
`pjsip show contacts`, `core show channels concise`, CDR Master.csv, the WAVs it wrote."""

from __future__ import annotations

import configparser
import csv
import os
import random
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support import free_port, pid_alive

LAUNCHER_ENV = "ARIMONITOR_TEST_ASTERISK"


def missing() -> str | None:
    """Why the live suite cannot run here, in one line; None when it can."""
    launcher = os.environ.get(LAUNCHER_ENV)
    if not launcher:
        return f"live suite: {LAUNCHER_ENV} is not set (path to an instance.sh-compatible Asterisk launcher)"
    if not os.access(launcher, os.X_OK):
        return f"live suite: {LAUNCHER_ENV}={launcher} is not an executable file"
    if not shutil.which("sipp"):
        return "live suite: sipp is not installed (apt-get install sip-tester)"
    return None


# What a shell reports for a child killed by SIGILL (128 + 4): the binary uses an instruction this
# CPU lacks (the shared build uses AVX-512; some x86-64 machines have only AVX2).
SIGILL_EXIT = 128 + signal.SIGILL


def cannot_run_here(launcher: str, folder: Path) -> str | None:
    """Why the launcher's Asterisk cannot run on this machine's CPU, in one line; None when it
    starts. Only a start killed by SIGILL counts: any other failure is the suite's to report."""
    probe = Asterisk(launcher, folder)
    try:
        result = probe._launch("start", str(folder), str(probe.http), str(probe.sip),
                               str(probe.ami), str(probe.rtp))
    finally:
        probe.stop()
    said = f"{result.stdout}{result.stderr}"
    if result.returncode in (SIGILL_EXIT, -signal.SIGILL) or "Illegal instruction" in said:
        return (f"live suite: the Asterisk of {LAUNCHER_ENV} dies with SIGILL on this CPU "
                f"(a build for instructions this machine lacks, e.g. AVX-512)")
    return None


def free_udp_port(even: bool = False) -> int:
    """A UDP port nobody holds now (SIP, SIPp media). `even` for RTP, whose RTCP is port + 1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if not even or (port % 2 == 0 and _udp_free(port + 1) and _udp_free(port + 2)
                        and _udp_free(port + 3)):
            return port


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class Contact:
    """One line of `pjsip show contacts`: Asterisk's own view of a registration."""
    aor: str
    ip: str
    port: int
    status: str


@dataclass(frozen=True)
class Cdr:
    """One Master.csv line (cdr_csv with loguniqueid and loguserfield)."""
    src: str
    dst: str
    channel: str
    dstchannel: str
    lastapp: str
    start: str
    answer: str
    end: str
    duration: int
    billsec: int
    disposition: str
    uniqueid: str


class Asterisk:
    """One instance in `folder` on free loopback ports."""

    def __init__(self, launcher: str, folder: Path) -> None:
        self.launcher = launcher
        self.folder = folder
        self.http = free_port()
        self.sip = free_udp_port()
        self.ami = free_port()
        # RTP takes a block of 1000 ports; a random block keeps parallel instances apart
        self.rtp = random.randrange(30000, 39000, 2)

    # -- lifetime ------------------------------------------------------------------------------
    def start(self) -> None:
        result = self._launch("start", str(self.folder), str(self.http), str(self.sip),
                              str(self.ami), str(self.rtp))
        if result.returncode != 0:
            raise RuntimeError(f"Asterisk did not start: {result.stdout}{result.stderr}")

    def stop(self) -> None:
        if self.folder.exists():
            self._launch("stop", str(self.folder))
        self.kill()  # whatever the launcher did, nothing may outlive the test

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        pid = self.pid()
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)

    def pid(self) -> int | None:
        try:
            return int((self.folder / "run" / "asterisk.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def alive(self) -> bool:
        pid = self.pid()
        return bool(pid and pid_alive(pid))

    def _launch(self, *words: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([self.launcher, *words], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def hang_up(self, channel_id: str) -> None:
        """As an operator would: DELETE the channel through ARI (gone already is fine)."""
        requests.delete(f"http://127.0.0.1:{self.http}/ari/channels/{channel_id}",
                        auth=("arimon", self.ari_password()), timeout=5)

    # -- the truth -----------------------------------------------------------------------------
    def cli(self, command: str) -> str:
        result = self._launch("cli", str(self.folder), command, timeout=20)
        return result.stdout

    def contacts(self) -> dict[str, Contact]:
        """AOR -> its live contact, from `pjsip show contacts`."""
        found = {}
        for line in self.cli("pjsip show contacts").splitlines():
            words = line.split()
            # "Contact:  1013010/sip:1013010@127.0.0.1:5281;transport=U 1f81be074d NonQual nan"
            if len(words) >= 4 and words[0] == "Contact:" and not words[1].startswith("<"):
                aor, uri = words[1].split("/", 1)
                hostport = uri.split("@", 1)[-1].split(";", 1)[0]
                host, _, port = hostport.rpartition(":")
                found[aor] = Contact(aor, host, int(port), words[3])
        return found

    def channels(self) -> list[list[str]]:
        """`core show channels concise`, one list of fields per channel."""
        return [line.split("!") for line in self.cli("core show channels concise").splitlines() if "!" in line]

    def up_channels(self, endpoint: str) -> list[str]:
        """The uniqueids of `endpoint`'s PJSIP channels that are Up."""
        return [f[-1] for f in self.channels() if f[0].startswith(f"PJSIP/{endpoint}-") and f[4] == "Up"]

    def cdrs(self) -> list[Cdr]:
        path = self.folder / "log" / "cdr-csv" / "Master.csv"
        if not path.exists():
            return []
        rows = []
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                # accountcode,src,dst,dcontext,clid,channel,dstchannel,lastapp,lastdata,start,
                # answer,end,duration,billsec,disposition,amaflags,uniqueid,userfield
                rows.append(Cdr(src=row[1], dst=row[2], channel=row[5], dstchannel=row[6],
                                lastapp=row[7], start=row[9], answer=row[10], end=row[11],
                                duration=int(row[12]), billsec=int(row[13]), disposition=row[14],
                                uniqueid=row[16]))
        return rows

    def recordings(self) -> Path:
        return self.folder / "spool" / "recording"

    def sipp_dir(self) -> Path:
        return self.folder / "sipp"

    # -- credentials, from the instance's own rendered configuration ---------------------------
    def ari_password(self, user: str = "arimon") -> str:
        return _ini(self.folder / "etc" / "ari.conf")[user]["password"]

    def ami_secret(self, user: str = "arimon") -> str:
        return _ini(self.folder / "etc" / "manager.conf")[user]["secret"]


def _ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, inline_comment_prefixes=(";",))
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser
