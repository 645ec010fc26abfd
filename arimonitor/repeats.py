"""A failure that repeats is logged once, then as a count, every line bounded.

An hour of Asterisk outage used to write a WARNING every 2 s (and each line longer than the
last). Now: the first failure of an episode is one line; while it goes on, a count at 10, 100,
1,000... failures and at least every `remind` seconds; when it stops, one line says how many
there were and for how long. A failure in the first `grace` seconds of a process's life is
INFO, not WARNING (at start-up the simulator or Asterisk may simply not be up yet): a healthy
start logs no warning, and one that is still failing after the grace logs its WARNING then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

MAX_TEXT = 300
# At start-up Asterisk (or the demo's simulator) may not be up yet: failures then are INFO.
STARTUP_GRACE = 20.0


def bounded(text: str, limit: int = MAX_TEXT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RepeatedFailure:
    def __init__(self, log: logging.Logger, what: str, *, grace: float = 0.0, remind: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.what = what
        self.clock = clock
        self.grace_until = clock() + grace
        self.remind = remind
        self.count = 0            # failures in this episode
        self.total = 0            # failures ever (for stats)
        self._since = 0.0
        self._warned = False
        self._last_line = 0.0

    def failed(self, text: str) -> None:
        now = self.clock()
        self.count += 1
        self.total += 1
        text = bounded(text)
        if self.count == 1:
            self._since = self._last_line = now
        if not self._warned and now >= self.grace_until:
            self._warned = True
            self._last_line = now
            again = f" ({self.count} times in {now - self._since:.0f} s)" if self.count > 1 else ""
            self.log.warning("%s failed%s: %s", self.what, again, text)
        elif self.count == 1:
            self.log.info("%s failed while starting up (retrying): %s", self.what, text)
        elif self._warned and (_power_of_ten(self.count) or now - self._last_line >= self.remind):
            self._last_line = now
            self.log.warning("%s still failing: %d times in %.0f s; last: %s", self.what, self.count,
                             now - self._since, text)

    def succeeded(self) -> None:
        if self.count:
            level = logging.INFO
            self.log.log(level, "%s works again after %d failure(s) in %.0f s", self.what, self.count,
                         self.clock() - self._since)
        self.count = 0
        self._warned = False


def _power_of_ten(n: int) -> bool:
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1
