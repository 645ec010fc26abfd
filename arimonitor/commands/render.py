"""Text an operator reads at a glance: tables, headings, durations, ages, progress lines.

Engine-side command handlers build their reply `text` with these, so every command looks the
same in arictl, on the manager port and in logs. Pure functions, no I/O except `Progress`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO


def heading(title: str, count: int | str | None = None) -> str:
    """`=== ENDPOINTS FOR CLIENT 101 (12) ===`"""
    suffix = f" ({count})" if count is not None else ""
    return f"=== {title.upper()}{suffix} ==="


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return str(value).replace("\n", " ")


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str] | None = None, *,
          title: str | None = None, align: str | None = None, max_width: int = 60,
          empty: str = "(none)") -> str:
    """Rows of values -> aligned columns; numbers right-aligned, None shown as '-'.

    `align` overrides per column with 'l'/'r' (e.g. "lrl"); a cell longer than `max_width`
    is cut with '…' so one long value cannot push every other column off screen. With
    `title`, a heading with the row count comes first.
    """
    rows = [list(r) for r in rows]
    lines = [heading(title, len(rows))] if title is not None else []
    if not rows:
        return "\n".join(lines + [empty])
    ncols = max(len(r) for r in rows + ([list(headers)] if headers else []))
    if align is None:
        align = "".join("r" if all(_is_number(r[i]) or r[i] is None for r in rows if i < len(r))
                        and any(_is_number(r[i]) for r in rows if i < len(r)) else "l"
                        for i in range(ncols))
    text = [[_cut(cell(r[i]) if i < len(r) else "", max_width) for i in range(ncols)] for r in rows]
    head = [_cut(str(h), max_width) for h in headers] + [""] * (ncols - len(headers)) if headers else None
    widths = [max(len(t[i]) for t in text + ([head] if head else [])) for i in range(ncols)]

    def line(cells: list[str]) -> str:
        out = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(cells, widths, align.ljust(ncols, "l"))]
        return "  ".join(out).rstrip()

    if head:
        lines += [line(head), line(["-" * w for w in widths])]
    lines += [line(t) for t in text]
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def duration(seconds: float | None) -> str:
    """3 -> '3s', 192 -> '3m12s', 7260 -> '2h01m', 90000 -> '1d01h'; None -> '-'."""
    if seconds is None:
        return "-"
    total = round(max(0.0, float(seconds)))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def age(then: float | None, now: float | None = None) -> str:
    """A past epoch time as '5s ago', '3m ago', '2h ago', '4d ago'; future or None -> 'now'/'-'."""
    if then is None:
        return "-"
    delta = (time.time() if now is None else now) - then
    if delta < 1:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit} ago"
    return f"{int(delta)}s ago"


def progress_line(label: str, done: int, total: int | None, started: float, now: float | None = None) -> str:
    """`sweeping endpoints  1200/3000  40%  3s elapsed, ~4s left`"""
    elapsed = (time.monotonic() if now is None else now) - started
    if not total:
        return f"{label}  {done}  {duration(elapsed)} elapsed"
    pct = 100 * done // total
    left = f", ~{duration(elapsed * (total - done) / done)} left" if 0 < done < total else ""
    return f"{label}  {done}/{total}  {pct}%  {duration(elapsed)} elapsed{left}"


def backlog_line(label: str, count: int, per_second: float) -> str:
    """`backlog 1,234 jobs, 37/s, ~33s left`; no estimate while nothing has finished yet."""
    if per_second <= 0:
        return f"{label} {count:,} jobs, no rate yet"
    rate = f"{per_second:.1f}" if per_second < 10 else f"{per_second:,.0f}"
    return f"{label} {count:,} jobs, {rate}/s, ~{duration(count / per_second)} left"


class Progress:
    """Rewrites one line on a terminal (at most every `interval` s); plain lines elsewhere."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None,
                 interval: float = 0.5):
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.interval = interval
        self.started = time.monotonic()
        self._last = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last < self.interval and done != self.total:
            return
        self._last = now
        text = progress_line(self.label, done, self.total, self.started, now)
        self.stream.write(f"\r{text}\x1b[K" if self._tty else text + "\n")
        self.stream.flush()

    def finish(self, done: int) -> None:
        self._last = 0.0
        self.update(done)
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
