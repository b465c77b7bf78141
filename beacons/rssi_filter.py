"""A time-windowed robust RSSI filter over the readings of the last ``window_s`` seconds: the median
(the level) and the second-highest reading (the peak statistic).

A window of seconds, not samples, because phones advertise anywhere from 10 times a second to once
every two: a sample count would mean 0.3 s for one phone and 6 s for another. The median, because
the noise is one-sided: fast fading and a passing body knock single readings 10-20 dB *down*,
rarely up, so a mean (or a 1-Euro/Kalman filter) drags the level down after every fade while the
median ignores a minority of faded readings. At one reading a second a window holds 2-4 readings,
too few for Tukey fences to mean anything; the median works at every rate. The interquartile
range is kept as the spread the staff screen shows next to the level."""

from __future__ import annotations

from collections import deque


class RssiWindow:
    """Readings of one member at one scanner over the last ``window_s`` seconds."""

    __slots__ = ("window_s", "times", "values")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.times: deque[float] = deque()
        self.values: deque[int] = deque()

    def push(self, t: float, rssi: int) -> None:
        """Add a reading at time ``t`` and forget readings older than the window (readings that
        arrive slightly out of order from several relays are kept until the ones before them age
        out)."""
        times, values = self.times, self.values
        times.append(t)
        values.append(rssi)
        horizon = t - self.window_s
        while times[0] < horizon:
            times.popleft()
            values.popleft()

    def __len__(self) -> int:
        return len(self.values)

    def level(self) -> float:
        """Median of the readings in the window (dBm). The window must not be empty."""
        return self.level_and_top()[0]

    def level_and_top(self) -> tuple[float, float]:
        """(median, second-highest reading) in one sort: what the engine needs per reading."""
        ordered = sorted(self.values)
        n = len(ordered)
        mid = n >> 1
        median = float(ordered[mid]) if n & 1 else (ordered[mid - 1] + ordered[mid]) / 2
        return median, float(ordered[-2] if n > 1 else ordered[-1])

    def spread(self) -> float:
        """Interquartile range of the readings in the window (dB); 0 with fewer than 4."""
        ordered = sorted(self.values)
        n = len(ordered)
        if n < 4:
            return 0.0
        return float(ordered[(3 * n) // 4] - ordered[n // 4])
