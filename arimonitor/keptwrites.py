"""Writes SQLite refused (a full disk), kept in memory until it takes them again.

One shape for every part that writes while the disk may be full (the engine's history rows,
click-to-call outcomes and flow rows): what was refused is kept, in order and bounded (the
oldest dropped and counted beyond `limit`), and `flush()`, called every second by its owner,
writes it again oldest first, stopping at the first refusal. A write kept under a `key`
replaces the one kept under that key (a row whose last state is all that needs writing).

The first refusal of an episode is logged once, and only a write that goes through ends it
(an idle second proves nothing): `error` says why meanwhile, for `status`. An owner that
shares one error between several kinds (the engine) hands its own `refused` to `flush()`.
Depends on nothing of arimonitor: the owner hands in its write function.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

MAX_KEPT = 10000  # writes of one kind kept in memory while SQLite cannot be written

T = TypeVar("T")
log = logging.getLogger(__name__)


class KeptWrites(Generic[T]):
    def __init__(self, what: str, write: Callable[[T], Any], limit: int = MAX_KEPT,
                 logger: logging.Logger = log) -> None:
        self.what = what      # names them in the log lines: "c2c outcomes"
        self._write = write
        self.limit = limit
        self.log = logger
        self.error = ""       # why SQLite cannot be written; "" = fine
        self.dropped = 0      # kept writes given up beyond the limit
        self._items: dict[Hashable, T] = {}  # insertion order = write order
        self._serial = itertools.count()     # the key of a write kept under none

    def put(self, item: T, key: Hashable | None = None) -> Any:
        """Write now, or keep it if SQLite refuses (never raised): what the write returned, or
        None when it is kept. While writes are kept it goes after them, so the order holds."""
        if self._items:
            self.keep(item, key)
            self.flush()
            return None
        try:
            return self._write(item)
        except sqlite3.Error as exc:
            self.refused(exc)
            self.keep(item, key)
            return None

    def keep(self, item: T, key: Hashable | None = None) -> None:
        """Keep a refused write after those already kept (one kept under `key` goes)."""
        if key is None:
            key = ("#", next(self._serial))
        else:
            self._items.pop(key, None)
        if len(self._items) >= self.limit:
            del self._items[next(iter(self._items))]
            self.dropped += 1
        self._items[key] = item

    def flush(self, refused: Callable[[sqlite3.Error], None] | None = None) -> int:
        """Write what is kept, oldest first; at a refusal call `refused(exc)` (default: this
        one's own) and stop, the rest still kept. How many went."""
        written = 0
        while self._items:
            key, item = next(iter(self._items.items()))
            try:
                self._write(item)
            except sqlite3.Error as exc:
                (refused or self.refused)(exc)
                return written
            del self._items[key]
            written += 1
        if self.error:
            self.log.warning("%s: SQLite writable again: %d kept written, %d dropped meanwhile",
                             self.what, written, self.dropped)
            self.error = ""
        return written

    def refused(self, exc: Exception) -> None:
        if not self.error:
            self.log.error("%s: SQLite not writable (%s): kept in memory (up to %d) and written "
                           "when it is again", self.what, exc, self.limit)
        self.error = str(exc)[:200]

    def view(self) -> dict[str, Any]:
        """For `status` (health.with_kept): {"error", "kept", "dropped"}."""
        return {"error": self.error, "kept": len(self._items), "dropped": self.dropped}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._items.values()))
