"""A minimal engine loop for tests and the engine stub: add_socket + every over one Poller."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import zmq


class SimpleLoop:
    def __init__(self) -> None:
        self.poller = zmq.Poller()
        self.handlers: dict[Any, Callable[..., Any]] = {}
        self.timers: list[list[Any]] = []  # [interval, next_due, fn]

    def add_socket(self, sock: zmq.Socket, handler: Callable[..., Any]) -> None:
        self.poller.register(sock, zmq.POLLIN)
        self.handlers[sock] = handler

    def every(self, seconds: float, fn: Callable[[], Any]) -> None:
        self.timers.append([seconds, time.monotonic() + seconds, fn])

    def run_once(self, timeout: float = 0.05) -> None:
        for sock, _ in self.poller.poll(timeout * 1000):
            self.handlers[sock](sock)
        now = time.monotonic()
        for timer in self.timers:
            if now >= timer[1]:
                timer[1] = now + timer[0]
                timer[2]()

    def run_until(self, done: Callable[[], Any], timeout: float, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.run_once()
            result = done()
            if result:
                return result
        raise AssertionError(f"timed out after {timeout}s waiting for {what or done}")
