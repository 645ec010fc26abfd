"""Capped exponential backoff with jitter, for every reconnect loop (ARI WebSocket, RabbitMQ)."""

from __future__ import annotations

import random


class Backoff:
    """Waits of first, 2x, 4x ... up to `cap`, each drawn from [half, whole] of the step, so
    many clients restarting together spread out and no wait ever exceeds the cap. `reset()`
    after a connection that worked."""

    def __init__(self, first: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.first = first
        self.cap = cap
        self._step = first
        self._rng = rng or random.Random()

    def next(self) -> float:
        delay = self._step * self._rng.uniform(0.5, 1.0)
        self._step = min(self.cap, self._step * 2)
        return delay

    def reset(self) -> None:
        self._step = self.first
