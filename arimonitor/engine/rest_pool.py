"""A small pool of REST threads for what the engine fires in reaction to events (`continue`).

    pool = RestPool(loop, "ari-continue", 3, lambda: LeanAri(url, user, password, timeout))
    pool.submit(channel_id, lambda ari: ari.post(f"/channels/{channel_id}/continue"), done)

Why a pool: at a thousand Stasis calls a second, one `continue` at a time on one thread (each
waiting for Asterisk's answer) set the pace of the whole engine. Each thread keeps its own
keep-alive connection (LeanAri: a third of requests' CPU per request).

Promises:
- each submitted item runs exactly once (the pool never retries; LeanAri resends only a request
  a kept-alive connection lost before it was sent, and a second `continue` meets a 409);
- items with the same key (a channel id) go to the same thread, so they run in the order
  submitted; items of different keys may overlap;
- `done(result, error)` runs on the loop thread, where the engine counts; results are handed
  back in bunches (one wake-up of the loop for all the results that piled up meanwhile).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from arimonitor.engine.loop import Done, Loop

log = logging.getLogger(__name__)

Work = Callable[[Any], Any]  # work(client) -> result, run on a pool thread


class RestPool:
    def __init__(self, loop: Loop, name: str, size: int, make_client: Callable[[], Any]) -> None:
        self.loop = loop
        self.size = max(1, size)
        self.pending = 0      # submitted, result not yet handed back (loop thread)
        self.submitted = 0
        self._results: deque[tuple[Done | None, Any, BaseException | None]] = deque()
        self._results_lock = threading.Lock()
        self._queues: list[queue.SimpleQueue] = []
        self._threads: list[threading.Thread] = []
        for i in range(self.size):
            q: queue.SimpleQueue = queue.SimpleQueue()
            thread = threading.Thread(target=self._run, args=(q, make_client), daemon=True,
                                      name=f"{name}-{i}")
            self._queues.append(q)
            self._threads.append(thread)
            thread.start()

    def submit(self, key: str, work: Work, done: Done | None = None) -> None:
        """Loop thread: run work(client) on the thread that owns `key`."""
        self.pending += 1
        self.submitted += 1
        self._queues[hash(key) % self.size].put((work, done))

    def _run(self, q: queue.SimpleQueue, make_client: Callable[[], Any]) -> None:
        client = make_client()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                work, done = item
                try:
                    result, error = work(client), None
                except BaseException as exc:  # noqa: BLE001 - handed to `done`
                    result, error = None, exc
                with self._results_lock:
                    first = not self._results
                    self._results.append((done, result, error))
                if first:  # the loop has not been woken for the results waiting: wake it once
                    self.loop.call_soon_threadsafe(self._hand_back)
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()

    def _hand_back(self) -> None:
        with self._results_lock:
            results, self._results = self._results, deque()
        for done, result, error in results:
            self.pending -= 1
            if done is not None:
                try:
                    done(result, error)
                except Exception:
                    log.exception("REST result handler %r failed", done)
            elif error is not None:
                log.warning("background REST failed: %s", error)

    def stop(self) -> None:
        for q in self._queues:
            q.put(None)
