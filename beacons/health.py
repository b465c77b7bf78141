"""Fleet health from scanning: which declared beacons were heard, when, how strongly, and what
their telemetry says; alerts when one has been missing for too long or its battery runs low.

Only the store's own beacons are tracked (matched against the fleet declaration); everything else
is ignored here without being kept. Eddystone-TLM frames carry no id, so they are attributed to the
beacon whose identifying frame came from the same address (the beacon's own, not a shopper's).
An EID beacon's encrypted telemetry (ETLM) is opened with its declared identity key, in the
rotation period its last ephemeral id showed its clock to be in (the spec pairs the two by
address and time); one that does not authenticate is counted and logged once per beacon."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from beacons.advertisement import Advertisement
from beacons.eid import ephemeral_id
from beacons.errors import FrameError, TraceError
from beacons.fleet import BeaconSpec, Fleet
from beacons.frames import EddystoneEID, EddystoneETLM, EddystoneTLM, identity, parse_frames

_log = logging.getLogger(__name__)

EID_SLACK_QUANTA = 2  # accept an EID this many rotation periods either side of the expected one
#: A low battery clears only this far above the threshold: a reading that wobbles around the
#: threshold (2490 / 2510 mV) alerted and cleared dozens of times an hour.
BATTERY_CLEAR_MARGIN_MV = 100
#: Addresses remembered per beacon (the latest ones it sent an identifying frame from), to tell
#: whose telemetry an id-less TLM frame is. A beacon sends its telemetry from the address of its
#: identifying frame, or from one of a few if each slot has its own; an EID beacon rotates its
#: address (~every 15 min, ~35,000 a year), so the older ones are forgotten.
ADDRESSES_PER_BEACON = 4


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
        #: address -> beacon, only the latest ``ADDRESSES_PER_BEACON`` of each beacon.
        self._addresses: dict[str, str] = {}
        #: beacon -> its latest addresses, oldest first (a dict used as an ordered set).
        self._recent: dict[str, dict[str, None]] = {}
        #: Per EID beacon: (the start of the rotation period its last recognised id belongs to
        #: on the beacon's own clock, the time it was heard): what its ETLM nonce is made from.
        self._eid_clocks: dict[str, tuple[int, float]] = {}
        #: Encrypted telemetry that did not authenticate, per beacon (logged on the first).
        self.etlm_rejected: dict[str, int] = {}
        #: Beacons whose last sighting is the last run's, not heard since (see follow_clock).
        self._restored: set[str] = set()

    def observe(self, adv: Advertisement) -> None:
        """Update from one advertisement; non-beacon and foreign beacon data is ignored."""
        if not adv.manufacturer_data and not adv.service_data:
            return
        try:
            frames = parse_frames(adv.manufacturer_bytes(), adv.service_bytes())
        except TraceError:
            return
        for frame in frames:
            if isinstance(frame, EddystoneTLM | EddystoneETLM):
                beacon = self._addresses.get(adv.address)
                if beacon is not None:
                    self._telemetry(beacon, frame, adv.t)
                continue
            beacon = (
                self._match_eid(frame, adv.t)
                if isinstance(frame, EddystoneEID)
                else self._by_identity.get(identity(frame))
            )
            if beacon is None:
                continue
            self._remember(adv.address, beacon)
            status = self.status[beacon]
            status.last_seen, status.rssi, status.scanner = adv.t, adv.rssi, adv.scanner
            self._restored.discard(beacon)

    def _remember(self, address: str, beacon: str) -> None:
        """Note that ``beacon`` sends from ``address``, forgetting the oldest of its addresses
        beyond ``ADDRESSES_PER_BEACON`` (and the address's earlier owner, if it had one)."""
        previous = self._addresses.get(address)
        if previous is not None and previous != beacon:
            self._recent[previous].pop(address, None)
        self._addresses[address] = beacon
        recent = self._recent.setdefault(beacon, {})
        recent.pop(address, None)
        recent[address] = None
        while len(recent) > ADDRESSES_PER_BEACON:
            oldest = next(iter(recent))
            del recent[oldest]
            del self._addresses[oldest]

    def restore(self, saved: BeaconStatus) -> None:
        """Take up a declared beacon's status as the last run stored it, so a restart neither
        forgets when it was last heard nor repeats (or never clears) an alert already given."""
        if saved.id in self.status:
            self.status[saved.id] = replace(saved, zone=self.status[saved.id].zone)
            self._restored.add(saved.id)

    def follow_clock(self, seconds: float) -> None:
        """The clock that stamps advertisements was set ``seconds`` forward (or back): move the
        times kept by as much, so the step is not taken for a silence. Set forward by days,
        every beacon not heard since looked missing; set back, a beacon that then died was
        "heard" in the future and not missed until the clock caught up. Sightings taken up
        from the last run stay: they were stamped before this run's clock went wrong (after
        a power cut of days, one moved would make a beacon that died meanwhile look heard)."""
        for status in self.status.values():
            if status.last_seen is not None and status.id not in self._restored:
                status.last_seen += seconds
        if self._started is not None:
            self._started += seconds
        self._eid_clocks = {b: (start, seen + seconds)
                            for b, (start, seen) in self._eid_clocks.items()}

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

    def _telemetry(self, beacon: str, frame: EddystoneTLM | EddystoneETLM, t: float) -> None:
        tlm = frame if isinstance(frame, EddystoneTLM) else self._open(beacon, frame, t)
        if tlm is None:
            return
        status = self.status[beacon]
        status.battery_mv = tlm.battery_mv or None  # 0 = mains powered (spec)
        status.temperature_c = tlm.temperature_c
        status.uptime_s = tlm.uptime_s

    def _open(self, beacon: str, etlm: EddystoneETLM, t: float) -> EddystoneTLM | None:
        """Decrypt an EID beacon's ETLM. Its time counter, known to the rotation period from its
        last recognised id, has moved on by the time since: it is in one of two periods."""
        spec = self._specs[beacon]
        if spec.identity_key is None:
            self._reject_etlm(
                beacon,
                f"it is declared as {spec.kind}, which has no identity key to decrypt it "
                "with; declare it as eddystone-eid",
            )
            return None
        period_start, seen = self._eid_clocks[beacon]  # its address came from a recognised EID
        now = period_start + math.floor(t - seen)
        for beacon_time in (now, now + (1 << spec.rotation_exponent)):
            if not 0 <= beacon_time <= 0xFFFFFFFF:
                continue
            try:
                return etlm.open(
                    bytes.fromhex(spec.identity_key), spec.rotation_exponent, beacon_time
                )
            except FrameError:
                continue
        self._reject_etlm(
            beacon,
            "it does not authenticate with the declared identity_key (another key flashed "
            "into the beacon, or a damaged frame)",
        )
        return None

    def _reject_etlm(self, beacon: str, why: str) -> None:
        """Count encrypted telemetry that cannot be read; tell the log once per beacon."""
        count = self.etlm_rejected[beacon] = self.etlm_rejected.get(beacon, 0) + 1
        if count == 1:
            _log.warning(
                "beacon %s: encrypted telemetry (ETLM) ignored: %s; its battery reading is not "
                "updated",
                beacon,
                why,
            )

    def _match_eid(self, frame: EddystoneEID, t: float) -> str | None:
        hub_time = int(t)  # store EID beacons count Unix seconds (see render)
        for spec in self._eid_specs:
            beacon_time = self._eid_time(spec, frame.eid, hub_time)
            if beacon_time is not None:
                self._eid_clocks[spec.id] = (beacon_time, t)
                return spec.id
        return None

    @staticmethod
    def _eid_time(spec: BeaconSpec, eid: bytes, hub_time: int) -> int | None:
        """The start of the rotation period in which ``spec`` advertises ``eid``, looked for
        within a few periods of the hub's time; None when it is not this beacon's id."""
        assert spec.identity_key is not None
        key = bytes.fromhex(spec.identity_key)
        exponent = spec.rotation_exponent
        for k in range(-EID_SLACK_QUANTA, EID_SLACK_QUANTA + 1):
            beacon_time = max(0, hub_time + k * (1 << exponent))
            if ephemeral_id(key, exponent, beacon_time) == eid:
                return (beacon_time >> exponent) << exponent
        return None
