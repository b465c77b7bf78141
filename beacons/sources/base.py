"""The interface every advertisement source implements, and the bleak detection callback the
real adapter and the simulated radio share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from beacons.advertisement import Advertisement, from_bleak

AdvertisementSink = Callable[[Advertisement], None]


class AdvertisementSource(Protocol):
    """Produces advertisements into a sink until cancelled or exhausted."""

    name: str

    async def run(self, sink: AdvertisementSink) -> None:
        """Deliver advertisements to ``sink``; returns when the input ends."""


class DetectionCallback:
    """What bleak calls for every detection: stamps it with the injected clock and hands the
    trace record on. The BlueZ scanner and the simulated radio both call this, with bleak's own
    ``BLEDevice`` and ``AdvertisementData``."""

    def __init__(self, scanner: str, clock: Callable[[], float], sink: AdvertisementSink) -> None:
        self.scanner = scanner
        self._clock = clock
        self._sink = sink
        self.count = 0
        self.last_at: float | None = None

    def __call__(self, device: BLEDevice, data: AdvertisementData) -> None:
        now = self._clock()
        self.count += 1
        self.last_at = now
        self._sink(from_bleak(device, data, scanner=self.scanner, t=now))
