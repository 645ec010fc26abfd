"""Find WAVs that have neither an MP3 nor a job: left by a crash, or written by MixMonitor.

A file still being written is left alone: it must be older than `settle` seconds and, if we
saw it on an earlier scan, have the same size and mtime as then. Files not ready yet are
remembered so the engine's periodic scan takes them once they settle.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class Candidate:
    wav: str
    mp3: str
    tags: dict[str, str]
    source: str  # recordings | mixmonitor


@dataclass
class ScanReport:
    found: list[Candidate] = field(default_factory=list)
    settling: int = 0  # still being written (or too new): looked at again later
    has_mp3: int = 0
    has_job: int = 0
    busy: int = 0  # a recording the engine knows is still running
    errors: list[str] = field(default_factory=list)


def mp3_for(wav: str, folder: str, mp3_root: str, source: str) -> str:
    """recordings/<rel>.wav -> <mp3>/<rel>.mp3; mixmonitor/<rel>.wav -> <mp3>/mixmonitor/<rel>.mp3"""
    rel = Path(os.path.relpath(wav, folder)).with_suffix(".mp3")
    base = Path(mp3_root) / "mixmonitor" if source == "mixmonitor" else Path(mp3_root)
    return str(base / rel)


def tags_for(wav: str, folder: str, mtime: float) -> dict[str, str]:
    """Our layout client/YYYY-MM-DD/callid says it all; otherwise the name and the file date."""
    parts = Path(os.path.relpath(wav, folder)).with_suffix("").parts
    # the file's time is when Asterisk finished writing it: the best date-time a WAV alone gives
    when = dt.datetime.fromtimestamp(mtime).replace(microsecond=0).isoformat()
    if len(parts) >= 3 and _DATE.fullmatch(parts[-2]):
        return {"client": parts[-3], "date": parts[-2], "call_id": parts[-1], "datetime": when}
    return {"client": "", "date": when[:10], "call_id": parts[-1], "datetime": when}


def _wavs(folder: str, errors: list[str]) -> Iterator[os.DirEntry]:
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue  # our temporaries and hidden files
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.name.lower().endswith(".wav") and entry.is_file():
                        yield entry
        except OSError as exc:
            errors.append(f"{current}: {exc.strerror or exc}")


class Rescanner:
    def __init__(self, folders: list[tuple[str, str]], mp3_root: str, settle: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.folders = [(source, folder) for source, folder in folders if folder]
        self.mp3_root = mp3_root
        self.settle = settle
        self.clock = clock
        self._seen: dict[str, tuple[int, float]] = {}  # path -> (size, mtime) at the last scan

    @property
    def waiting(self) -> int:
        return len(self._seen)

    def scan(self, has_job: Callable[[str], bool],
             busy: Callable[[str], bool] = lambda wav: False) -> ScanReport:
        report = ScanReport()
        now = self.clock()
        seen: dict[str, tuple[int, float]] = {}
        for source, folder in self.folders:
            if not os.path.exists(folder):
                # normal before the first recording: Asterisk (or the simulator) creates it
                continue
            if not os.path.isdir(folder):
                report.errors.append(f"{folder}: not a folder")
                continue
            for entry in _wavs(folder, report.errors):
                wav = entry.path
                if has_job(wav):
                    report.has_job += 1
                    continue
                mp3 = mp3_for(wav, folder, self.mp3_root, source)
                if os.path.exists(mp3):
                    report.has_mp3 += 1
                    continue
                if busy(wav):
                    report.busy += 1
                    continue
                try:
                    st = entry.stat()
                except OSError:
                    continue  # gone meanwhile
                mark = (st.st_size, st.st_mtime)
                previous = self._seen.get(wav)
                if now - st.st_mtime < self.settle or (previous is not None and previous != mark):
                    seen[wav] = mark
                    report.settling += 1
                    continue
                report.found.append(Candidate(wav, mp3, tags_for(wav, folder, st.st_mtime), source))
        self._seen = seen
        return report
