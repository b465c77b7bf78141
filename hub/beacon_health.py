"""Fleet health in the hub: the declared beacons' last sighting, RSSI and battery, kept in the
database, and alerts (missing for too long, battery low) recorded, sent to the shop through the
outbox and pushed to the staff live feed, like reminders."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, fields

from beacons.advertisement import Advertisement
from beacons.fleet import Fleet
from beacons.health import BeaconStatus, FleetHealth, HealthAlert
from hub.clock import STEP_S, Clock, WallSteps
from hub.config.beacons import HealthConfig
from hub.db import Database, Transaction
from hub.events import Event, EventBus
from hub.outbox import enqueue

BEACON_HEALTH = "beacon.health"  # outbox type (sync.messages.BEACON_HEALTH) and staff-feed event
#: beacon_health's columns that hold a BeaconStatus (the table names the id beacon_id).
_COLUMNS = ["beacon_id AS id" if f.name == "id" else f.name for f in fields(BeaconStatus)]


class BeaconHealthService:
    """Feeds advertisements to the health tracker and records what its checks find."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        bus: EventBus | None,
        fleet: Fleet,
        config: HealthConfig,
        now: Callable[[], float] | None = None,
        wall_step: WallSteps | None = None,
    ) -> None:
        """``now`` is the time advertisements are stamped with: the hub's clock, or a flat-out
        replay's own (health must judge "missing" on the same time as the sightings);
        ``wall_step`` tells when the hub's clock is set (not for a replay)."""
        self.db = db
        self.clock = clock
        self.bus = bus
        self._now = now or clock.now
        self._wall_step = wall_step
        self._followed = 0.0  # the step of the wall clock the kept times are on
        self.tracker = FleetHealth(
            fleet,
            self._now,
            missing_after_s=config.missing_after_s,
            battery_low_mv=config.battery_low_mv,
        )
        for row in db.query(f"SELECT {', '.join(_COLUMNS)} FROM beacon_health"):
            self.tracker.restore(
                BeaconStatus(**{**row, "missing": bool(row["missing"]),
                                "battery_low": bool(row["battery_low"])})
            )

    def observe(self, adv: Advertisement) -> None:
        """One advertisement from any source (non-beacon traffic is ignored cheaply: shoppers'
        phones send only service UUIDs, and this runs for every advertisement)."""
        if adv.manufacturer_data or adv.service_data:
            self._follow_clock()
            self.tracker.observe(adv)

    def _follow_clock(self) -> None:
        """Move the kept times when the wall clock has been set (by over ``STEP_S``) since they
        were stamped; called before anything new is stamped or judged, so each time kept is
        on the clock as it reads now."""
        if self._wall_step is None:
            return
        step = self._wall_step()
        if abs(step - self._followed) > STEP_S:
            self.tracker.follow_clock(step - self._followed)
            self._followed = step

    def check(self) -> list[HealthAlert]:
        """Evaluate health now, store every beacon's status and record the alerts (a write:
        run it through ``Database.write``)."""
        self._follow_clock()
        alerts = self.tracker.check(self._now())
        now = self.clock.now()
        with self.db.transaction() as tx:
            for status in self.tracker.status.values():
                tx.execute(
                    "INSERT INTO beacon_health (beacon_id, zone, last_seen, rssi, scanner, "
                    "battery_mv, temperature_c, uptime_s, missing, battery_low, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (beacon_id) DO UPDATE "
                    "SET zone = excluded.zone, last_seen = excluded.last_seen, "
                    "rssi = excluded.rssi, scanner = excluded.scanner, "
                    "battery_mv = excluded.battery_mv, temperature_c = excluded.temperature_c, "
                    "uptime_s = excluded.uptime_s, missing = excluded.missing, "
                    "battery_low = excluded.battery_low, updated_at = excluded.updated_at",
                    (
                        status.id,
                        status.zone,
                        status.last_seen,
                        status.rssi,
                        status.scanner,
                        status.battery_mv,
                        status.temperature_c,
                        status.uptime_s,
                        int(status.missing),
                        int(status.battery_low),
                        now,
                    ),
                )
            for alert in alerts:
                self._record(tx, alert)
        return alerts

    def _record(self, tx: Transaction, alert: HealthAlert) -> None:
        data = {
            "beacon": alert.beacon,
            "kind": alert.kind,
            "active": alert.active,
            "t": alert.t,
            **alert.detail,
        }
        seq = enqueue(tx, self.bus, BEACON_HEALTH, data, self.clock.now())
        tx.execute(
            "INSERT INTO beacon_alerts (beacon_id, kind, active, detail, seq, t) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (alert.beacon, alert.kind, int(alert.active), json.dumps(alert.detail), seq, alert.t),
        )
        if self.bus is not None:
            bus, event = self.bus, Event(BEACON_HEALTH, data)
            tx.after_commit(lambda: bus.publish(event))

    def snapshot(self) -> dict[str, object]:
        """Every declared beacon's status and the latest alerts, for the staff screen."""
        alerts = self.db.query(
            "SELECT beacon_id, kind, active, detail, t FROM beacon_alerts ORDER BY id DESC LIMIT 50"
        )
        return {
            "beacons": [asdict(s) for s in self.tracker.status.values()],
            "alerts": [
                {**a, "active": bool(a["active"]), "detail": json.loads(a["detail"])}
                for a in alerts
            ],
        }
