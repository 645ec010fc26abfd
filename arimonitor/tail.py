"""Follow several log files at once, each line prefixed with its process (supervisorctl
can tail only one)."""

from __future__ import annotations

import difflib
import os
import re
import sys
import time
from pathlib import Path


class _Followed:
    def __init__(self, name: str, path: Path):
        self.name = name
        self.path = path
        self.handle = None
        self.inode: int | None = None
        self.partial = ""

    def open(self, from_end: bool) -> None:
        try:
            self.handle = open(self.path, encoding="utf-8", errors="replace")  # noqa: SIM115 (kept open to follow)
        except FileNotFoundError:
            return
        self.inode = os.fstat(self.handle.fileno()).st_ino
        if from_end:
            self.handle.seek(0, os.SEEK_END)

    def rotated(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self.inode
        except FileNotFoundError:
            return False

    def read_lines(self) -> list[str]:
        if self.handle is None:
            self.open(from_end=False)
            if self.handle is None:
                return []
        elif self.rotated():
            lines = self._drain()
            self.handle.close()
            self.open(from_end=False)
            return lines + self._drain()
        return self._drain()

    def _drain(self) -> list[str]:
        if self.handle is None:
            return []
        data = self.partial + self.handle.read()
        lines = data.split("\n")
        self.partial = lines.pop()
        return lines


def _last_lines(path: Path, count: int) -> list[str]:
    if count <= 0 or not path.exists():
        return []
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64 * 1024 * max(1, count // 100)))
        text = fh.read().decode("utf-8", errors="replace")
    return text.splitlines()[-count:]


def log_names(log_dir: Path) -> list[str]:
    return sorted(p.stem for p in log_dir.glob("*.log") if p.stem != "supervisord")


# every log a tree writes, whether or not it exists yet (a program not started yet has none)
KNOWN_LOGS = ("engine", "ari-reader_00", "clicktocall", "ari-sim", "calls", "metrics")


def unknown_name(log_dir: Path, names: list[str]) -> str | None:
    """'no process engin; did you mean engine?' for the first name no log can have, else None
    (`tail engin` used to wait forever for a file that never comes)."""
    known = sorted(set(KNOWN_LOGS) | set(log_names(log_dir)))
    for name in names:
        if name in known or re.fullmatch(r"(transcoder|ari-reader)_\d\d", name):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f" (logs: {', '.join(known)})"
        return f"no process {name}{hint}"
    return None


def follow(log_dir: Path, names: list[str], lines: int = 10, forever: bool = True,
           out=None, poll: float = 0.2) -> int:
    """Print the last `lines` of each log, then new lines as they come, prefixed `name | `."""
    out = out or sys.stdout
    wanted = names or log_names(log_dir)
    if not wanted:
        print(f"no logs in {log_dir} yet", file=sys.stderr)
        return 1
    width = max(len(n) for n in wanted)
    followed = [_Followed(n, log_dir / f"{n}.log") for n in wanted]
    for f in followed:
        for line in _last_lines(f.path, lines):
            out.write(f"{f.name.ljust(width)} | {line}\n")
        f.open(from_end=True)
    out.flush()
    while forever:
        wrote = False
        for f in followed:
            for line in f.read_lines():
                out.write(f"{f.name.ljust(width)} | {line}\n")
                wrote = True
        if wrote:
            out.flush()
        time.sleep(poll)
    return 0
