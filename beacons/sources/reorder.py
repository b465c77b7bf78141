"""Putting relayed advertisements back in time order before presence sees them.

Why: the presence engine is one state machine over one stream of sightings. Each sighting is
judged against what the member's other scanners heard *so far*: the zone rule compares the
scanners' levels at that moment, an interior scanner's ``lead_db`` compares against the door
scanner's level, a confirmation is the first sighting ``confirm_s`` after the walk-in, and a
sighting newer than a member's silence deadline decides "left" before an older one can show
the member was still there. Scanner nodes publish every ~200 ms and their batches interleave
on the broker (one node's 10.0-10.2 s may arrive after another's 10.2-10.4 s), so fed as they
arrive the engine decided other zones, arrivals and departures than on the same sightings in
time order, and a recording of the day replayed other events than the hub had announced.

``ReorderBuffer`` holds each advertisement until the clock is ``hold_s`` past its time, then
hands it on in the order of (time, scanner): a merged recording sorted by time, with equal
times by scanner name (the engine's decisions depend even on the order of simultaneous
sightings at two scanners), replays exactly what the hub decided. A node's own lines keep
their order. One that comes after advertisements later than it were handed on (a node whose
link stalled or whose clock is behind by more than ``hold_s``) is handed on at once, as late,
and counted: it still says the member is there, which dropping it would lose (a "left" that
is not true), and it can only be judged as today's relays all were."""

from __future__ import annotations

import heapq
import math

from beacons.advertisement import Advertisement
from beacons.sources.base import AdvertisementSink

#: The default hold, in seconds: a node publishes every ~200 ms, so its oldest line is that
#: old when sent; the rest is room for the store's Wi-Fi and the nodes' clocks (NTP).
HOLD_S = 1.0

#: (t, scanner, arrival number, advertisement): the number keeps a node's lines at one time in
#: the node's order, and, never equal, spares comparing two advertisements.
_Entry = tuple[float, str, int, Advertisement]


class ReorderBuffer:
    """Holds advertisements ``hold_s`` past their time and hands them to ``sink`` in order."""

    __slots__ = ("hold_s", "_sink", "_on_late", "_heap", "_seq", "_last", "late")

    def __init__(
        self, hold_s: float, sink: AdvertisementSink, on_late: AdvertisementSink
    ) -> None:
        """``on_late`` is told of each advertisement handed on late, after ``sink``."""
        self.hold_s = hold_s
        self._sink = sink
        self._on_late = on_late
        self._heap: list[_Entry] = []
        self._seq = 0
        self._last: _Entry | tuple[float, str, int] = (-math.inf, "", 0)  # last handed on
        #: Advertisements that came after later ones had been handed on (applied at once).
        self.late = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, adv: Advertisement) -> None:
        """Hold ``adv``, or hand it on at once when it is late (older than one handed on)."""
        self._seq += 1
        entry = (adv.t, adv.scanner, self._seq, adv)
        if entry < self._last:
            self.late += 1
            self._sink(adv)
            self._on_late(adv)
            return
        heapq.heappush(self._heap, entry)

    def release(self, now: float) -> None:
        """Hand on, in order, every advertisement whose time is ``hold_s`` or more before
        ``now``."""
        heap, sink = self._heap, self._sink
        horizon = now - self.hold_s
        while heap and heap[0][0] <= horizon:
            entry = self._last = heapq.heappop(heap)
            sink(entry[3])
