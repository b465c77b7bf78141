"""The simulated radio behind bleak's own scanner interface.

``SimulatedRadio`` puts a simulated store's advertisements on the air in real time against the
injected clock. Its ``scanner_factory`` makes objects that look to ``BleakSource`` exactly like a
``BleakScanner`` (constructed with the detection callback, ``start()``/``stop()``), and they call
that callback with bleak's own ``BLEDevice``/``AdvertisementData``. So the simulated store runs
through the same source code as the real adapter, watchdog included. A stopped scanner hears
nothing: advertisements sent while it is stopped are lost, as on air."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from beacons.advertisement import Advertisement, to_bleak
from beacons.simulator import Simulation
from beacons.sources.base import AdvertisementSink
from beacons.sources.bleak_scanner import BleakSource


class SimulatedRadio:
    """Advertisements on the air, indexed by the scanner that hears them. The first scanner to
    start fixes when the recording's first advertisement goes on air."""

    def __init__(
        self,
        advertisements: Sequence[Advertisement],
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._by_scanner: dict[str, list[Advertisement]] = {}
        for adv in advertisements:
            self._by_scanner.setdefault(adv.scanner, []).append(adv)
        self._origin: tuple[float, float] | None = None
        self.scanners = sorted(self._by_scanner)

    def on_air_at(self, adv: Advertisement) -> float:
        """When (injected clock) ``adv`` is transmitted."""
        assert self._origin is not None
        first_sim, first_clock = self._origin
        return first_clock + (adv.t - first_sim)

    def scanner_factory(self, scanner: str) -> Callable[..., SimulatedScanner]:
        """A ``BleakScanner``-compatible constructor for the named scanner's receiver."""

        def make(callback: Callable[..., None], **_kwargs: Any) -> SimulatedScanner:
            return SimulatedScanner(self, self._by_scanner.get(scanner, []), callback)

        return make

    def _start_clock(self) -> None:
        if self._origin is None:
            firsts = [advs[0].t for advs in self._by_scanner.values() if advs]
            self._origin = (min(firsts, default=0.0), self._clock())


class SimulatedScanner:
    """One receiver of the simulated radio, with ``BleakScanner``'s start/stop."""

    def __init__(
        self,
        radio: SimulatedRadio,
        advertisements: list[Advertisement],
        callback: Callable[..., None],
    ) -> None:
        self._radio = radio
        self._advertisements = advertisements
        self._callback = callback
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start receiving (what ``BleakScanner.start`` does)."""
        self._radio._start_clock()
        since = self._radio._clock()
        self._task = asyncio.get_running_loop().create_task(self._receive(since))

    async def stop(self) -> None:
        """Stop receiving."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _receive(self, since: float) -> None:
        radio = self._radio
        for adv in self._advertisements:
            at = radio.on_air_at(adv)
            if at < since:
                continue  # sent before this scanner was listening
            if at > radio._clock():
                await radio._sleep(at - radio._clock())
            device, data = to_bleak(adv)
            self._callback(device, data)


class SimulatedSource:
    """A simulated store as a source: one ``BleakSource`` per scanner of its layout, each on a
    simulated receiver. Advertisement times come from the injected clock, as on air; the
    simulation's members (``simulation.members``) are who its tokens resolve to."""

    def __init__(
        self,
        simulation: Simulation,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        watchdog_s: float = 60.0,
    ) -> None:
        self.name = f"simulate:{simulation.scenario.seed}"
        self.simulation = simulation
        self._clock = clock
        self._sleep = sleep
        self.watchdog_s = watchdog_s

    async def run(self, sink: AdvertisementSink) -> None:
        """Receive on every scanner of the simulated store until cancelled."""
        radio = SimulatedRadio(self.simulation.advertisements, clock=self._clock, sleep=self._sleep)
        sources = [
            BleakSource(
                name,
                clock=self._clock,
                sleep=self._sleep,
                mode="active",
                watchdog_s=self.watchdog_s,
                scanner_factory=radio.scanner_factory(name),
            )
            for name in radio.scanners
        ]
        await asyncio.gather(*(source.run(sink) for source in sources))
