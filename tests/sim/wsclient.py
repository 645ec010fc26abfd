"""A websocket-client reader that collects ARI frames in a thread, for the sim's tests."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import websocket


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class EventStream:
    """Connects to /ari/events and keeps every frame (parsed when it is JSON)."""

    def __init__(self, url: str, user: str, password: str, timeout: float = 5.0) -> None:
        self.ws = websocket.create_connection(url, header={"Authorization": basic_auth(user, password)},
                                              timeout=timeout, skip_utf8_validation=True)
        self.raw: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        self.ws.settimeout(None)
        try:
            while True:
                frame = self.ws.recv()
                if frame is None or frame == "" and not self.ws.connected:
                    break
                if isinstance(frame, bytes):
                    frame = frame.decode("utf-8", "replace")
                with self._lock:
                    self.raw.append(frame)
                    try:
                        self.events.append(json.loads(frame))
                    except ValueError:
                        pass
        except (websocket.WebSocketException, OSError):
            pass
        finally:
            self.closed.set()

    def types(self) -> list[str]:
        with self._lock:
            return [e.get("type") for e in self.events if isinstance(e, dict)]

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def wait_for(self, check: Callable[[list[dict[str, Any]]], Any], timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = check(self.snapshot())
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; last types: {self.types()[-15:]}")
            time.sleep(0.01)

    def wait_type(self, kind: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        return self.wait_for(lambda evs: (m := [e for e in evs if e.get("type") == kind])[count - 1:] and m,
                             timeout)

    def quiet(self, seconds: float = 0.1, timeout: float = 5.0) -> None:
        """Wait until no frame arrived for `seconds`."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            n = len(self.raw)
            if n == last:
                return
            last = n
            time.sleep(seconds)

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except (websocket.WebSocketException, OSError):
            pass
