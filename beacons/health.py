"""Fleet health from scanning: which declared beacons were heard, when, how strongly, and what
their telemetry says; alerts when one has been missing for too long or its battery runs low.

Only the store's own beacons are tracked (matched against the fleet declaration); everything else
is ignored here without being kept. Eddystone-TLM frames carry no id, so they are attributed to the
beacon whose identifying frame came from the same address (the beacon's own, not a shopper's)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from beacons.advertisement import Advertisement
from beacons.eid import ephemeral_id
from beacons.errors import TraceError
from beacons.fleet import BeaconSpec, Fleet
from beacons.frames import EddystoneEID, EddystoneTLM, identity, parse_frames

EID_SLACK_QUANTA = 2  # accept an EID this many rotation periods either side of the expected one
#: A low battery clears only this far above the threshold: a reading that wobbles around the
#: threshold (2490 / 2510 mV) alerted and cleared dozens of times an hour.
BATTERY_CLEAR_MARGIN_MV = 100


@dataclass
class BeaconStatus:
    """What scanning says about one declared beacon."""

    id: str
    zone: str | None
    last_seen: float | None = None
    rssi: int | None = None
    scanner: str | None = None
    battery_mv: int | None = None
    temperature_c: float | None = None
    uptime_s: float | None = None
    missing: bool = False
    battery_low: bool = False


@dataclass(frozen=True)
class HealthAlert:
    """A change in a beacon's health worth telling staff and the shop."""

    t: float
    beacon: str
    kind: str  # "missing" | "battery_low"
    active: bool  # True when the problem starts, False when it clears
    detail: dict[str, object] = field(default_factory=dict)


class FleetHealth:
    """Tracks the declared beacons. ``observe`` every advertisement, ``check`` on a timer."""

    def __init__(
        self,
        fleet: Fleet,
        clock: Callable[[], float],
        *,
        missing_after_s: float,
        battery_low_mv: int,
    ) -> None:
        self._clock = clock
        self._started: float | None = None  # the first check: nothing is missing before it
        self.missing_after_s = missing_after_s
        self.battery_low_mv = battery_low_mv
        self._specs = {spec.id: spec for spec in fleet.beacons}
        self.status = {spec.id: BeaconStatus(spec.id, spec.zone) for spec in fleet.beacons}
        self._by_identity = {
            identity(spec.identity_frame()): spec.id
            for spec in fleet.beacons
            if spec.kind != "eddystone-eid"
        }
        self._eid_specs = [spec for spec in fleet.beacons if spec.kind == "eddystone-eid"]
        self._addresses: dict[str, str] = {}

    def observe(self, adv: Advertisement) -> None:
        """Update from one advertisement; non-beacon and foreign beacon data is ignored."""
        if not adv.manufacturer_data and not adv.service_data:
            return
        try:
            frames = parse_frames(adv.manufacturer_bytes(), adv.service_bytes())
        except TraceError:
            return
        for frame in frames:
            if isinstance(frame, EddystoneTLM):
                beacon = self._addresses.get(adv.address)
                if beacon is not None:
                    self._telemetry(self.status[beacon], frame)
                continue
            beacon = (
                self._match_eid(frame, adv.t)
                if isinstance(frame, EddystoneEID)
                else self._by_identity.get(identity(frame))
            )
            if beacon is None:
                continue
            self._addresses[adv.address] = beacon
            status = self.status[beacon]
            status.last_seen, status.rssi, status.scanner = adv.t, adv.rssi, adv.scanner

    def restore(self, saved: BeaconStatus) -> None:
        """Take up a declared beacon's status as the last run stored it, so a restart neither
        forgets when it was last heard nor repeats (or never clears) an alert already given."""
        if saved.id in self.status:
            self.status[saved.id] = replace(saved, zone=self.status[saved.id].zone)

    def check(self, now: float | None = None) -> list[HealthAlert]:
        """Alerts for problems that started or cleared since the last check."""
        now = self._clock() if now is None else now
        alerts: list[HealthAlert] = []
        if not math.isfinite(now):
            return alerts  # a replay that has not reached its first advertisement
        if self._started is None:
            self._started = now
        for status in self.status.values():
            if status.last_seen is None:  # never heard (a restored one stays missing)
                missing = status.missing or now - self._started > self.missing_after_s
            else:
                missing = now - status.last_seen > self.missing_after_s
            if missing != status.missing:
                status.missing = missing
                alerts.append(
                    HealthAlert(now, status.id, "missing", missing, {"last_seen": status.last_seen})
                )
            low = self._battery_low(status)
            if low != status.battery_low:
                status.battery_low = low
                alerts.append(
                    HealthAlert(
                        now, status.id, "battery_low", low, {"battery_mv": status.battery_mv}
                    )
                )
        return alerts

    def _battery_low(self, status: BeaconStatus) -> bool:
        """Low under the threshold; cleared only a margin above it; an unknown reading (none
        yet, or 0: mains powered) leaves it as it was."""
        if not self.battery_low_mv:
            return False  # the alert is turned off
        if status.battery_mv is None:
            return status.battery_low
        margin = BATTERY_CLEAR_MARGIN_MV if status.battery_low else 0
        return status.battery_mv < self.battery_low_mv + margin

    def _telemetry(self, status: BeaconStatus, tlm: EddystoneTLM) -> None:
        status.battery_mv = tlm.battery_mv or None  # 0 = mains powered (spec)
        status.temperature_c = tlm.temperature_c
        status.uptime_s = tlm.uptime_s

    def _match_eid(self, frame: EddystoneEID, t: float) -> str | None:
        beacon_time = int(t)  # store EID beacons count Unix seconds (see render)
        for spec in self._eid_specs:
            if self._eid_matches(spec, frame.eid, beacon_time):
                return spec.id
        return None

    @staticmethod
    def _eid_matches(spec: BeaconSpec, eid: bytes, beacon_time: int) -> bool:
        assert spec.identity_key is not None
        key = bytes.fromhex(spec.identity_key)
        period = 1 << spec.rotation_exponent
        return any(
            ephemeral_id(key, spec.rotation_exponent, max(0, beacon_time + k * period)) == eid
            for k in range(-EID_SLACK_QUANTA, EID_SLACK_QUANTA + 1)
        )
