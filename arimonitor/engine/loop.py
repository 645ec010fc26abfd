"""The engine's single-threaded event loop over a zmq.Poller.

    loop.add_socket(sock, handler)         # handler(sock) when readable; drain with NOBLOCK
    loop.every(seconds, fn)                # a Timer; timer.interval may be changed later
    loop.call_later(seconds, fn)
    loop.call_soon_threadsafe(fn, *args)   # from any thread: fn runs in the loop thread
    loop.run_in_thread(work, done)         # work() in a new thread, done(result, error) here
    Worker(loop, name).submit(work, done)  # the same on one long-lived thread, in order

Only the loop thread touches the engine's state and sockets. Threads hand results back through
a deque plus one byte on a pipe the poller watches (a pipe, not an inproc socket: a write is
thread-safe from any thread, with no socket per thread).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import zmq

log = logging.getLogger(__name__)

Done = Callable[[Any, BaseException | None], None]


class Timer:
    __slots__ = ("cancelled", "fn", "interval", "repeat")

    def __init__(self, interval: float, fn: Callable[[], Any], repeat: bool) -> None:
        self.interval = interval
        self.fn = fn
        self.repeat = repeat
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Loop:
    def __init__(self) -> None:
        self.poller = zmq.Poller()
        self._sockets: dict[Any, Callable[[Any], None]] = {}
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._calls: collections.deque = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        # A worker may finish after close(): writing to the closed fd number could land in a
        # file that reused it (the SQLite database). The lock makes "closed" and the write one.
        self._wake_lock = threading.Lock()
        self._closed = False
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.poller.register(self._wake_r, zmq.POLLIN)
        self._running = False
        self.thread: threading.Thread | None = None
        self.iterations = 0

    # ---- registration -----------------------------------------------------------------------

    def add_socket(self, sock: Any, handler: Callable[[Any], None]) -> None:
        self.poller.register(sock, zmq.POLLIN)
        self._sockets[sock] = handler

    def every(self, seconds: float, fn: Callable[[], Any], first: float | None = None) -> Timer:
        timer = Timer(seconds, fn, True)
        self._schedule(timer, seconds if first is None else first)
        return timer

    def call_later(self, seconds: float, fn: Callable[[], Any]) -> Timer:
        timer = Timer(seconds, fn, False)
        self._schedule(timer, seconds)
        return timer

    def _schedule(self, timer: Timer, delay: float) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), timer))

    # ---- threads ----------------------------------------------------------------------------

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._wake_lock:
            if self._closed:
                return  # the engine is shutting down: nobody will run it
            self._calls.append((fn, args))
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already: the loop is awake

    def run_in_thread(self, work: Callable[[], Any], done: Done, name: str = "engine-work") -> None:
        def target() -> None:
            try:
                result, error = work(), None
            except BaseException as exc:  # noqa: BLE001 - handed to `done`, which decides
                result, error = None, exc
            self.call_soon_threadsafe(done, result, error)

        threading.Thread(target=target, name=name, daemon=True).start()

    def call_and_wait(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """From another thread: run fn() in the loop thread and return its value (or raise its
        error, in the caller's thread)."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # re-raised in the caller's thread
                box["error"] = exc
                if not isinstance(exc, Exception):
                    raise  # KeyboardInterrupt, SystemExit: the loop thread must see them too
            finally:
                done.set()  # whatever happened, the caller is not left waiting for its timeout

        self.call_soon_threadsafe(run)
        if not done.wait(timeout):
            raise TimeoutError(f"the engine loop did not answer within {timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["value"]

    # ---- running ----------------------------------------------------------------------------

    def run(self, stopping: Callable[[], bool]) -> None:
        self._running = True
        self.thread = threading.current_thread()
        while self._running and not stopping():
            self.run_once(0.2)

    def stop(self) -> None:
        self._running = False

    def run_once(self, max_wait: float = 0.2) -> None:
        self.iterations += 1
        wait = max_wait
        if self._timers:
            wait = max(0.0, min(wait, self._timers[0][0] - time.monotonic()))
        if self._calls:
            wait = 0.0
        for sock, _event in self.poller.poll(wait * 1000):
            if sock == self._wake_r:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            handler = self._sockets.get(sock)
            if handler is not None:
                self._guard(handler, sock)
        while self._calls:
            fn, args = self._calls.popleft()
            self._guard(fn, *args)
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _due, _n, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._guard(timer.fn)
            if timer.repeat and not timer.cancelled:
                self._schedule(timer, timer.interval)

    def _guard(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # one failing callback must not stop the engine
            log.exception("loop callback %r failed", fn)

    def close(self) -> None:
        with self._wake_lock:
            self._closed = True
            self.poller.unregister(self._wake_r)
            os.close(self._wake_r)
            os.close(self._wake_w)


class Worker:
    """One long-lived thread that runs submitted work in order (REST calls off the loop)."""

    def __init__(self, loop: Loop, name: str) -> None:
        self.loop = loop
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.pending = 0

    def submit(self, work: Callable[[], Any], done: Done | None = None) -> None:
        self.pending += 1
        self._queue.put((work, done))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            work, done = item
            try:
                result, error = work(), None
            except BaseException as exc:  # noqa: BLE001 - handed to `done`
                result, error = None, exc
            self.loop.call_soon_threadsafe(self._finished, done, result, error)

    def _finished(self, done: Done | None, result: Any, error: BaseException | None) -> None:
        self.pending -= 1
        if done is not None:
            done(result, error)
        elif error is not None:
            log.warning("background work failed: %s", error)

    def stop(self) -> None:
        self._queue.put(None)
