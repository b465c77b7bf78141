"""Reconnect delays: capped exponential backoff with jitter.

Hundreds of stores lose the same broker at the same moment; without jitter they would all come
back in lockstep and knock it over again. "Equal jitter" keeps at least half of each step, so a
store never hammers a broker that is still down, and spreads the other half at random.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable


class Backoff:
    """Delays of ``initial * 2**n`` seconds, capped at ``cap``, each drawn in [d/2, d]."""

    def __init__(self, initial: float, cap: float,
                 random: Callable[[], float] = _random.random) -> None:
        if initial <= 0 or cap < initial:
            raise ValueError("backoff needs 0 < initial <= cap")
        self.initial = initial
        self.cap = cap
        self._random = random
        self._attempt = 0

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the step up to the cap."""
        step = min(self.cap, self.initial * 2 ** min(self._attempt, 62))
        self._attempt += 1
        return step / 2 + self._random() * step / 2

    def reset(self) -> None:
        """A connection succeeded: the next failure starts again from ``initial``."""
        self._attempt = 0
