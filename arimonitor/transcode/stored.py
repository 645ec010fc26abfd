"""Recordings a fetch-server finished while the engine was down: listed over its ARI.

A server whose WAVs are not on this host ([ari:NAME] recordings empty or `fetch`) has no folder
the rescan could read, so a recording whose RecordingFinished was lost in an engine restart
would stay on that server for ever. After each `link.resynced` of such a server (engine start
included) `GET /recordings/stored` lists its spool. A recording gets the fetch job that
RecordingFinished would have given it when it is
- ours (a name the engine gives: `policy.is_ours`; anybody else's recordings are left alone),
- without a job and without an MP3 yet (`known`, on the loop thread: SQLite and our disk),
- no longer written: the engine does not know it as live, and Asterisk answers 404 to
  `GET /recordings/live/{name}` (a stored listing shows a recording still being written).
One still written makes the server `pending`: the owner's timer looks again, as it does for a
local file still settling. A listing that fails is logged once per episode, counted, and
looked at again the same way.

REST runs on the engine's REST worker (`submit_rest`), decisions on the loop thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from arimonitor.ari.rest import AriError, AriHttpError

log = logging.getLogger(__name__)

Submit = Callable[[Callable[[], Any], Callable[[Any, BaseException | None], None]], None]


def _q(part: str) -> str:
    from requests.utils import quote

    return quote(part, safe="")


class StoredLister:
    def __init__(self, rest_for: Callable[[str], Any], submit_rest: Submit, *,
                 ours: Callable[[str, str], bool], known: Callable[[str, str, str], bool],
                 live: Callable[[str], bool], queue: Callable[[str, str, str], Any]) -> None:
        self.rest_for = rest_for  # server -> its AriRest (used only on the REST worker)
        self.submit_rest = submit_rest
        self.ours = ours      # (server, name): a name the engine gives on that server
        self.known = known    # (server, name, format): it has a job or an MP3 already
        self.live = live      # name: the engine knows Asterisk is still writing it
        self.queue = queue    # (server, name, format): its fetch job
        self.pending: set[str] = set()   # servers to look at again (still written, or failed)
        self._looking: set[str] = set()  # a look in flight: never two at once per server
        self._failing: set[str] = set()  # servers whose failure was logged (this episode)
        self.counters = {"looks": 0, "queued": 0, "still_written": 0, "not_ours": 0,
                         "list_failed": 0}

    def look(self, server: str) -> None:
        """List `server`'s stored recordings and queue what is ours and waiting (loop thread)."""
        self.pending.discard(server)
        if server in self._looking:
            self.pending.add(server)  # a look already runs: one more after it
            return
        self._looking.add(server)
        self.counters["looks"] += 1
        rest = self.rest_for(server)
        self.submit_rest(lambda: rest.get("/recordings/stored"),
                         lambda items, error: self._listed(server, items, error))

    def _listed(self, server: str, items: Any, error: BaseException | None) -> None:
        if error is None and not isinstance(items, list):
            error = AriError(f"GET /recordings/stored answered {type(items).__name__}, not a list")
        if error is not None:
            self._failed(server, error)
            return
        waiting = []
        for item in items:
            name = item.get("name") if isinstance(item, dict) else None
            fmt = str(item.get("format") or "wav") if isinstance(item, dict) else ""
            if not isinstance(name, str) or not name:
                continue
            if not self.ours(server, name):
                self.counters["not_ours"] += 1
            elif not self.known(server, name, fmt):
                waiting.append((name, fmt))
        still = [w for w in waiting if self.live(w[0])]
        waiting = [w for w in waiting if w not in still]
        if not waiting:
            self._settled(server, [], len(still))
            return
        rest = self.rest_for(server)

        def written_still() -> list[bool]:  # on the REST worker: Asterisk's live recordings
            return [is_live(rest, name) for name, _fmt in waiting]

        def checked(flags: Any, error: BaseException | None) -> None:
            if error is not None:
                self._failed(server, error)
                return
            done = [w for w, flag in zip(waiting, flags) if not flag]
            self._settled(server, done, len(still) + sum(1 for f in flags if f))
        self.submit_rest(written_still, checked)

    def _settled(self, server: str, done: list[tuple[str, str]], still: int) -> None:
        self._looking.discard(server)
        if server in self._failing:
            self._failing.discard(server)
            log.info("stored recordings of %s: listed again", server)
        queued = 0
        for name, fmt in done:
            if not self.known(server, name, fmt) and self.queue(server, name, fmt) is not None:
                queued += 1
        self.counters["queued"] += queued
        self.counters["still_written"] += still
        if still:
            self.pending.add(server)
        if queued:
            log.info("stored recordings of %s: %d without MP3 queued for fetching", server, queued)

    def _failed(self, server: str, error: BaseException) -> None:
        self._looking.discard(server)
        self.pending.add(server)  # retried at the next look
        self.counters["list_failed"] += 1
        if server not in self._failing:
            self._failing.add(server)
            log.warning("stored recordings of %s: cannot list them (%s); looking again, "
                        "further failures counted", server, str(error)[:300])


def is_live(rest: Any, name: str) -> bool:
    """True while Asterisk still writes `name`; 404: it is not a live recording (Asterisk has
    no listing of live recordings, only this look-up by name)."""
    try:
        rest.get(f"/recordings/live/{_q(name)}")
    except AriHttpError as exc:
        if exc.status == 404:
            return False
        raise
    return True
