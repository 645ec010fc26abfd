"""Reading Asterisk's truth: CDR times, WAV lengths; and the tolerances the live tests allow.

Asterisk's CDR has whole seconds: `answer` is truncated to the second and `billsec` is
truncated too (cdr.c: ms / 1000). A true talk time T gives billsec = floor(T); arimonitor's
float billsec must lie in [billsec, billsec + 1), give or take EVENT_SLACK for when events
reach us against when Asterisk stamped them."""

from __future__ import annotations

import time
import wave
from pathlib import Path

from tests.live.asterisk import Asterisk, Cdr
from tests.support import eventually

EVENT_SLACK = 0.5   # seconds; the tolerance (billsec +-0.5 s)


def cdr_time(text: str) -> float | None:
    """A Master.csv time (local time, usegmtime=no) as epoch seconds."""
    return time.mktime(time.strptime(text, "%Y-%m-%d %H:%M:%S")) if text else None


def assert_billsec(cdr: Cdr, ours: float) -> None:
    assert cdr.billsec - EVENT_SLACK <= ours < cdr.billsec + 1 + EVENT_SLACK, (cdr.billsec, ours)


def assert_answer_time(cdr: Cdr, ours: float | None) -> None:
    answer = cdr_time(cdr.answer)
    assert answer is not None and ours is not None, (cdr.answer, ours)
    assert answer - EVENT_SLACK <= ours < answer + 1 + EVENT_SLACK, (cdr.answer, ours)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def the_cdr(cdrs: list[Cdr], uniqueid: str, lastapp: str | None = None) -> Cdr:
    """The CDR line of the call whose first channel is `uniqueid` (Dial's line, when several)."""
    rows = [c for c in cdrs if c.uniqueid == uniqueid and (lastapp is None or c.lastapp == lastapp)]
    assert rows, f"no CDR for {uniqueid} ({lastapp}) in {cdrs}"
    return rows[0]


def call_id_of(asterisk: Asterisk, caller: str) -> str:
    """The uniqueid of `caller`'s channel once it is Up, from `core show channels concise`."""
    return eventually(lambda: next(iter(asterisk.up_channels(caller)), None), timeout=10)
