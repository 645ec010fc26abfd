"""The engine's publications into the bus buffer, in the bus process.

The bus process SUBscribes to the engine's PUB socket (`[zmq] publish`), the same publications
`arictl watch` reads: one source in the engine. Each is stamped `<run>.<seq>` by the engine's
notifier (protocol.publication); a seq that skips ahead means the PUB/SUB pair dropped some at
its high-water mark. That is never silent: counted as `missed`, logged once per episode, and a
consumer should resync from `arictl --json`. A new engine run (another run id) starts afresh.
"""

from __future__ import annotations

import logging
from typing import Any

from arimonitor import protocol
from arimonitor.bus import message
from arimonitor.bus.buffer import BusEvent, EventBuffer

log = logging.getLogger(__name__)

TOPIC_PREFIXES = tuple(f"{topic}." for topic in message.BUS_TOPICS)


class Feed:
    def __init__(self, buffer: EventBuffer, server: str, run: str) -> None:
        self.buffer = buffer
        self.server = server   # [ari] server_id: for a publication that names none
        self.run = run         # this bus process run, in every body and message id
        self.seq = 0           # bus events of this run, from 1
        self.missed = 0        # engine publications the SUB never got (gaps in the stamps)
        self.bad = 0           # frames that were not a publication we can read
        self._engine: tuple[str, int] | None = None  # (engine run, last seq seen)
        self._missing = False  # a gap episode is on: logged once already

    def on_frames(self, parts: list[bytes]) -> None:
        """One SUB message: check its stamp, then pass bus topics on."""
        self._check_stamp(protocol.publication_stamp(parts))
        topic = parts[0].decode("utf-8", "replace")
        if not topic.startswith(TOPIC_PREFIXES):
            return
        try:
            body = protocol.loads(parts[-1])
            if not isinstance(body, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as exc:
            self.bad += 1
            if self.bad == 1:
                log.warning("events bus: unreadable publication %r: %s (counted as bad)", topic[:40], exc)
            return
        self.on_publication(topic, body)

    def on_publication(self, topic: str, body: dict[str, Any]) -> None:
        self.seq += 1
        server = body.get("server") or self.server
        key, data = message.encode(topic, body, server=server, seq=self.seq, run=self.run)
        self.buffer.put(BusEvent(self.seq, key, data, f"{self.run}.{self.seq}"))

    def _check_stamp(self, stamp: tuple[str, int] | None) -> None:
        if stamp is None:
            return
        run, seq = stamp
        known = self._engine
        self._engine = stamp
        if known is None or known[0] != run:
            return  # the first we hear of this engine run: nothing to compare with
        gap = seq - known[1] - 1
        if gap <= 0:
            if self._missing and gap == 0:
                self._missing = False
            return
        self.missed += gap
        if not self._missing:
            self._missing = True
            log.warning("events bus: missed %d publication(s) of the engine (its PUB dropped "
                        "them); counted as bus missed, a consumer should resync from "
                        "`arictl --json`", gap)

    def view(self) -> dict[str, Any]:
        return {"missed": self.missed, "bad": self.bad, "run": self.run}
