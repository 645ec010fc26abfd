"""Reading a v2.7 file into lines: BOMs, CRLF and non-UTF-8 files written on Windows."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from arimonitor.v27.problems import Problems

PathLike = str | os.PathLike[str]


def read_lines(path: PathLike, problems: Problems) -> list[str] | None:
    """The file's lines (index 0 is line 1), or None, with a problem, if it cannot be read.

    The whole file is read in one call so a file replaced during a reload is seen either
    before or after, never half of each.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        problems.error(0, f"cannot read file: {exc.strerror or exc}")
        return None
    return decode_lines(data, problems)


def decode_lines(data: bytes, problems: Problems) -> list[str]:
    """Decode and split `data`; never raises (latin-1 can decode any byte)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Notepad's "Unicode" encoding; v2.7 could not read it, but the intent is clear.
        problems.warning(0, "file is UTF-16; read it, but save it as UTF-8")
        text = data.decode("utf-16", errors="replace")
    else:
        data = data.removeprefix(codecs.BOM_UTF8)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            problems.warning(line, "file is not valid UTF-8 (first bad byte on this line); "
                                   "read as Windows-1252/latin-1")
            text = _decode_windows(data)
    # Split on \n only: str.splitlines() also splits on \x0c, \x1c, U+2028..., which would make
    # our line numbers disagree with the operator's editor. A BOM inside a line is what
    # `cat a.def b.def > c.def` leaves behind; it is never meant as text.
    return [line.removesuffix("\r").replace("\ufeff", "") for line in text.split("\n")]


def _decode_windows(data: bytes) -> str:
    # cp1252 and latin-1 agree on every accented letter; cp1252 also gets quotes and € right.
    # It leaves five bytes undefined, so latin-1 (total) is the last resort.
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")
