"""The baseline every figure is compared with: the fixed-threshold detector most home and retail
setups start from ("arrived" at the first reading above a threshold, "left" after a silence below
it, zone = scanner of the strongest last reading). No filter, no shape, no hysteresis."""

from __future__ import annotations

import heapq
import math

from beacons.presence import PresenceEvent
from beacons.settings import PresenceSettings


class ThresholdDetector:
    """Raw-RSSI threshold presence, with the same scanners and silence timeout as the engine."""

    def __init__(self, settings: PresenceSettings, threshold_dbm: float = -70.0) -> None:
        self.threshold_dbm = threshold_dbm
        self.left_after_s = settings.left_after_s
        self._zones = {s.name: s.zone_name for s in settings.scanners}
        self._offsets = {s.name: s.rssi_offset_db for s in settings.scanners}
        self._present: dict[str, tuple[float, str]] = {}  # member -> (last heard, zone)
        self._deadlines: list[tuple[float, str]] = []
        self.next_deadline = math.inf

    def observe(self, member: str, scanner: str, rssi: int, t: float) -> list[PresenceEvent]:
        """Any reading at or above the threshold keeps (or makes) the member present."""
        zone = self._zones.get(scanner)
        if zone is None or rssi + self._offsets[scanner] < self.threshold_dbm:
            return []
        previous = self._present.get(member)
        self._present[member] = (t, zone)
        heapq.heappush(self._deadlines, (t + self.left_after_s, member))
        self.next_deadline = self._deadlines[0][0]
        if previous is None:
            return [PresenceEvent(t, member, "arrived", zone)]
        if previous[1] != zone:
            return [PresenceEvent(t, member, "zone", zone)]
        return []

    def expire(self, now: float) -> list[PresenceEvent]:
        """'left' for members silent (above the threshold) for the timeout."""
        events: list[PresenceEvent] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            due, member = heapq.heappop(self._deadlines)
            state = self._present.get(member)
            if state is not None and state[0] + self.left_after_s == due:
                events.append(PresenceEvent(due, member, "left", state[1]))
                del self._present[member]
        self.next_deadline = self._deadlines[0][0] if self._deadlines else math.inf
        return events
