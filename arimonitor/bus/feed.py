"""The engine's publications into the bus buffer, in the bus process.

The bus process SUBscribes to the engine's PUB socket (`[zmq] publish`), the same publications
`arictl watch` reads: one source in the engine. Each is stamped `<run>.<seq>` by the engine's
notifier (protocol.publication), seq counting every publication of that engine run from 1.

A stamp that skips ahead means publications this SUB never got: the ones sent before it
connected (ZeroMQ's slow joiner: the engine's first resync is often done before the bus
process is up), while the bus process was restarting, or dropped at the high-water mark. The
feed then fetches them from the engine's kept ring (`catch_up`: the control command
`_publications`) and hands them on in order before the one that showed the gap. Only what the
ring no longer holds, or an engine that does not answer, is lost: counted as `missed`, logged
once per episode, and a consumer should resync from `arictl --json`.

`position` is the engine stamp of the last event the broker confirmed (kept in a file by the
bus process): a restarted bus process starts after it, so it neither repeats what the broker
has nor loses what it was still holding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from arimonitor import jsonfast, protocol
from arimonitor.bus import message
from arimonitor.bus.buffer import BusEvent, EventBuffer

log = logging.getLogger(__name__)

TOPIC_PREFIXES = tuple(f"{topic}." for topic in message.BUS_TOPICS)

# catch_up(run, after) -> the engine's `_publications` view (Notifier.since), or raises
# Unreachable when the engine does not answer
CatchUp = Callable[[str, int], dict[str, Any]]


class Unreachable(Exception):
    """The engine did not answer a catch-up."""


class Feed:
    def __init__(self, buffer: EventBuffer, server: str, run: str, *,
                 catch_up: CatchUp | None = None, position: tuple[str, int] | None = None) -> None:
        self.buffer = buffer
        self.server = server   # [ari] server_id: for a publication that names none
        self.run = run         # this bus process run, in every body
        self.seq = 0           # bus events of this run, from 1
        self.caught_up = 0     # publications fetched from the engine's ring, not the SUB
        self.missed = 0        # engine publications lost: gone from the ring, or no answer
        self.bad = 0           # frames that were not a publication we can read
        self.catch_up = catch_up
        self._engine = position  # (engine run, last seq handled)
        self._missing = False  # a loss episode is on: logged once already

    def on_frames(self, parts: list[bytes]) -> None:
        """One SUB message: fill any gap before it, then pass it on if it is a bus topic."""
        stamp = protocol.publication_stamp(parts)
        if stamp is not None and not self._in_order(*stamp):
            return  # handled already (before a restart, or by a catch-up)
        self._take(parts[0].decode("utf-8", "replace"), parts[-1], stamp)

    def _take(self, topic: str, raw: bytes | str, stamp: tuple[str, int] | None) -> None:
        if not topic.startswith(TOPIC_PREFIXES):
            return
        try:
            body = jsonfast.loads(raw)
        except ValueError as exc:
            body, why = None, str(exc)
        else:
            why = "the body is not a JSON object"
        if not isinstance(body, dict):
            self.bad += 1
            if self.bad == 1:
                log.warning("events bus: unreadable publication %r: %s (counted as bad)", topic[:40], why)
            return
        self.on_publication(topic, body, stamp)

    def on_publication(self, topic: str, body: dict[str, Any],
                       stamp: tuple[str, int] | None = None) -> None:
        self.seq += 1
        server = body.get("server") or self.server
        source = f"{stamp[0]}.{stamp[1]}" if stamp else f"{self.run}.{self.seq}"
        key, data = message.encode(topic, body, server=server, seq=self.seq, run=self.run, source=source)
        self.buffer.put(BusEvent(self.seq, key, data, source))

    @property
    def position(self) -> tuple[str, int] | None:
        return self._engine

    def _in_order(self, run: str, seq: int) -> bool:
        """False for a publication handled already; fills a gap before `seq` first."""
        known = self._engine
        after = known[1] if known is not None and known[0] == run else 0
        if seq <= after:
            return False
        if seq > after + 1:
            self._fill(run, after, seq)
        self._engine = (run, seq)
        return True

    def _fill(self, run: str, after: int, upto: int) -> None:
        """Publications after `after` and before `upto` of engine run `run`, from its ring."""
        lost = 0
        while after < upto - 1:
            try:
                if self.catch_up is None:
                    raise Unreachable("no catch-up")
                view = self.catch_up(run, after)
            except Unreachable:
                lost += upto - 1 - after
                break
            if view["run"] != run:  # the engine restarted meanwhile: the SUB will show the new run
                lost += upto - 1 - after
                break
            if view["forgotten"] > after:  # pushed out of the ring by newer ones
                lost += min(view["forgotten"], upto - 1) - after
                after = view["forgotten"]
            handed = 0
            for seq, topic, raw in view["publications"]:
                if seq >= upto:
                    break
                self._take(topic, raw, (run, seq))
                after, handed = seq, handed + 1
            self.caught_up += handed
            if not view["more"] or handed < len(view["publications"]):
                break
        self._count_lost(lost)

    def _count_lost(self, lost: int) -> None:
        if lost <= 0:
            if self._missing:
                self._missing = False
            return
        self.missed += lost
        if not self._missing:
            self._missing = True
            log.warning("events bus: lost up to %d publication(s) of the engine (neither its PUB "
                        "nor its kept ring had them); counted as bus missed, a consumer should "
                        "resync from `arictl --json`", lost)

    def view(self) -> dict[str, Any]:
        return {"missed": self.missed, "caught_up": self.caught_up, "bad": self.bad, "run": self.run}
