"""Phones as advertisers: how often they advertise (with the jitter BLE adds), when the app is in
the background and silent, how the token and the random address rotate, and how the phone is
carried (which decides when the wearer's body blocks it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from beacons.tokens import WINDOW_S, token_uuid

ADV_DELAY_MAX_S = 0.010  # BLE adds 0-10 ms of random delay to every advertising event


@dataclass
class Phone:
    """One advertising phone. ``key`` is None for a device that advertises no shopper token."""

    interval_s: float
    power_1m_dbm: float
    carried_in_front: bool
    body_loss_db: float
    height_m: float
    clock_skew_s: float
    quiet: list[tuple[float, float]] = field(default_factory=list)
    key: bytes | None = None
    prefix: bytes = b""
    extra_manufacturer: dict[str, str] = field(default_factory=dict)
    address_seed: int = 0

    def advert_times(self, start: float, end: float, rng: np.random.Generator) -> np.ndarray:
        """Advertising instants in ``[start, end)`` outside quiet periods: a fixed interval from a
        random phase, each event delayed by the 0-10 ms advDelay, the interval itself drifting
        a few per cent as phone schedulers do."""
        if end <= start:
            return np.empty(0)
        count = int((end - start) / self.interval_s) + 2
        steps = self.interval_s * rng.uniform(0.97, 1.03, count)
        times = start + rng.uniform(0, self.interval_s) + np.cumsum(steps) - steps[0]
        times = times + rng.uniform(0, ADV_DELAY_MAX_S, count)
        keep = times < end
        for q0, q1 in self.quiet:
            keep &= (times < q0) | (times >= q1)
        return times[keep]

    def window_at(self, t: np.ndarray) -> np.ndarray:
        """The token window the phone's (possibly skewed) clock is in at true times ``t``."""
        return np.floor((t + self.clock_skew_s) / WINDOW_S).astype(np.int64)

    def service_uuid(self, window: int) -> str:
        """The token UUID advertised in ``window`` (the phone's own window)."""
        assert self.key is not None
        return token_uuid(self.prefix, self.key, window)

    def address(self, window: int) -> str:
        """A random static-looking address that changes with the token window, as the phone's
        private address rotates with it."""
        value = (self.address_seed * 1_000_003 + window * 7919) % (1 << 46)
        octets = [(value >> (8 * i)) & 0xFF for i in range(6)]
        octets[5] = (octets[5] & 0x3F) | 0x40  # resolvable private address marker bits
        return ":".join(f"{o:02X}" for o in reversed(octets))


def draw_interval(rng: np.random.Generator) -> float:
    """Advertising interval: Android's three advertise modes (low latency ~100 ms, balanced
    ~250 ms, low power ~1 s, the last the default) and iOS foreground advertising, which falls in
    the same range."""
    ranges = ((0.1, 0.15), (0.2, 0.3), (0.9, 1.1))
    low, high = ranges[int(rng.choice(3, p=[0.25, 0.25, 0.5]))]
    return float(rng.uniform(low, high))


def draw_phone(
    rng: np.random.Generator,
    *,
    reference_dbm: float,
    power_sd_db: float,
    key: bytes | None,
    prefix: bytes,
    seed: int,
) -> Phone:
    """A phone with its carrying and radio draws; calibration spread between models is
    ``power_sd_db`` around the store's ``reference_dbm`` at 1 m."""
    in_front = bool(rng.random() < 0.75)
    return Phone(
        interval_s=draw_interval(rng),
        power_1m_dbm=float(reference_dbm + rng.normal(0, power_sd_db)),
        carried_in_front=in_front,
        body_loss_db=float(rng.uniform(3, 12)),
        height_m=float(rng.uniform(0.8, 1.4)),
        clock_skew_s=float(
            rng.uniform(-WINDOW_S, WINDOW_S) if rng.random() < 0.05 else rng.normal(0, 5)
        ),
        key=key,
        prefix=prefix,
        address_seed=seed,
    )


def quiet_periods(
    rng: np.random.Generator, start: float, end: float, *, count: int
) -> list[tuple[float, float]]:
    """``count`` silent stretches of 10-150 s (app backgrounded) inside ``[start, end)``."""
    out: list[tuple[float, float]] = []
    for _ in range(count):
        if end - start < 20:
            break
        length = float(rng.uniform(10, 150))
        q0 = float(rng.uniform(start, max(start, end - 10)))
        out.append((q0, min(q0 + length, end)))
    return out


def heading_to(x0: float, y0: float, x1: float, y1: float) -> float:
    """Direction from one point to another, radians."""
    return math.atan2(y1 - y0, x1 - x0)
