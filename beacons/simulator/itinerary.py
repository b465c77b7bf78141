"""A person's path as straight walks and stops, sampled at arbitrary times.

Kept separate from the radio so the same path drives every scanner and the ground truth (door
crossings, zone changes) comes from the very positions the radio used."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Itinerary:
    """Segments ``[t0, t1)`` moving from (x0, y0) to (x1, y1) (equal points = standing still)
    facing ``heading`` radians (0 = +x, pi/2 = into the shop)."""

    t0: list[float] = field(default_factory=list)
    t1: list[float] = field(default_factory=list)
    x0: list[float] = field(default_factory=list)
    y0: list[float] = field(default_factory=list)
    x1: list[float] = field(default_factory=list)
    y1: list[float] = field(default_factory=list)
    heading: list[float] = field(default_factory=list)

    @property
    def start(self) -> float:
        """When the person enters the simulated world."""
        return self.t0[0]

    @property
    def end(self) -> float:
        """When the person leaves the simulated world."""
        return self.t1[-1]

    def sample(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Positions x, y, heading and walking speed (m/s) at ``times``."""
        t0 = np.asarray(self.t0)
        t1 = np.asarray(self.t1)
        idx = np.clip(np.searchsorted(t0, times, side="right") - 1, 0, len(t0) - 1)
        span = np.maximum(t1[idx] - t0[idx], 1e-9)
        frac = np.clip((times - t0[idx]) / span, 0.0, 1.0)
        x0, y0 = np.asarray(self.x0)[idx], np.asarray(self.y0)[idx]
        x1, y1 = np.asarray(self.x1)[idx], np.asarray(self.y1)[idx]
        speed = np.hypot(x1 - x0, y1 - y0) / span
        return x0 + frac * (x1 - x0), y0 + frac * (y1 - y0), np.asarray(self.heading)[idx], speed


class ItineraryBuilder:
    """Builds an itinerary step by step and records when the person crosses the front wall."""

    def __init__(self, t: float, x: float, y: float, speed: float) -> None:
        self.path = Itinerary()
        self.t, self.x, self.y = t, x, y
        self.speed = speed
        self.facing = 0.0
        self.crossings: list[tuple[float, str]] = []  # (time, "in" | "out")

    def walk_to(self, x: float, y: float) -> ItineraryBuilder:
        """Walk in a straight line at the person's speed."""
        distance = math.hypot(x - self.x, y - self.y)
        if distance < 1e-6:
            return self
        duration = distance / self.speed
        self.facing = math.atan2(y - self.y, x - self.x)
        if (self.y < 0 <= y) or (self.y >= 0 > y):
            frac = (0 - self.y) / (y - self.y)
            self.crossings.append((self.t + frac * duration, "in" if y >= 0 else "out"))
        self._add(duration, x, y)
        return self

    def stay(self, seconds: float, facing: float | None = None) -> ItineraryBuilder:
        """Stand still for ``seconds`` facing ``facing`` (default: the way they were walking)."""
        if facing is not None:
            self.facing = facing
        if seconds > 0:
            self._add(seconds, self.x, self.y)
        return self

    def _add(self, duration: float, x: float, y: float) -> None:
        p = self.path
        p.t0.append(self.t)
        p.t1.append(self.t + duration)
        p.x0.append(self.x)
        p.y0.append(self.y)
        p.x1.append(x)
        p.y1.append(y)
        p.heading.append(self.facing)
        self.t += duration
        self.x, self.y = x, y
