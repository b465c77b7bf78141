"""Presence in the running hub: a source of advertisements -> token resolver -> presence engine ->
events recorded, pushed to the staff feed and, on arrival, turned into reminders; the same
advertisements feed fleet health.

The advertisement callback runs on the event loop and only does in-memory work (the lean pipeline);
database writes happen in a consumer task through the writer thread, so a slow SD card never
stalls the radio. Member keys come from the member table and are reloaded whenever it changes
(consent withdrawn: the member stops resolving once that reload has read the table, one database
read after the change; a burst of changes is one reload, and a reload recomputes only the changed
members' tokens). The token table's whole windows (start-up, every 512 s turn) are made on a
worker thread ahead of need, so neither thousands of members nor a window turn stall the loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from beacons.advertisement import Advertisement
from beacons.fleet import Fleet, load_fleet
from beacons.pipeline import PresencePipeline, TraceClock
from beacons.presence import MemberView, PresenceEngine, PresenceEvent
from beacons.simulator import Scenario, simulate
from beacons.sources import AdvertisementSource
from beacons.sources.bleak_scanner import BleakSource
from beacons.sources.mqtt_relay import MqttRelaySource
from beacons.sources.replay import ReplaySource
from beacons.sources.simulated import SimulatedSource
from beacons.tokens import WINDOW_S, TokenResolver
from hub.beacon_health import BeaconHealthService
from hub.clock import WallSteps
from hub.config.beacons import BeaconsConfig
from hub.events import Event, Subscription
from hub.members import MEMBERS_CHANGED
from hub.orders import ORDER_STATUS
from hub.reminders import Reminder, ReminderRules
from hub.storage import storage_failure
from sync.failures import FailureLog
from sync.mqtt_client import tls_context

if TYPE_CHECKING:
    from hub.services import Services

_log = logging.getLogger(__name__)

PRESENCE = "presence"  # staff-feed event: {"t", "member", "event", "zone"}
TICK_S = 1.0
#: A presence event the database cannot take for now (a full or read-only card, an I/O error:
#: ``hub.storage.storage_failure``) is tried again, the events after it waiting in order, every
#: RECORD_RETRY_S for up to RECORD_RETRY_FOR_S: an arrival recorded a few minutes late still
#: reminds a member who is in the store, and the staff still see it. Then it is let go.
RECORD_RETRY_S = 5.0
RECORD_RETRY_FOR_S = 600.0


def _relay_nodes(fleet: Fleet | None) -> list[str] | None:
    """The relay nodes the fleet file declares (its hub adapters publish nothing to the broker,
    so their names are not heard there), or None, any node, when it declares none."""
    nodes = [s.name for s in fleet.scanners if s.kind == "esp32-relay"] if fleet else []
    return nodes or None


def make_source(
    config: BeaconsConfig, services: Services, fleet: Fleet | None = None
) -> AdvertisementSource:
    """The configured source of advertisements; relay nodes are heard only when ``fleet``
    (the store's fleet file, read once by the caller) declares them, if it declares any."""
    clock = services.clock
    if config.source == "bleak":
        return BleakSource(
            config.scanner_name,
            clock=clock.now,
            sleep=clock.sleep,
            adapter=config.adapter,
            mode=config.scanning_mode,
            chain_prefix=bytes.fromhex(config.chain_prefix or ""),
            watchdog_s=config.watchdog_s,
            keep_trying=True,
        )
    if config.source == "mqtt":
        return MqttRelaySource(
            host=config.relay_host,
            port=config.relay_port,
            store=services.config.store.id,
            topic_prefix=services.config.mqtt.topic_prefix,
            username=config.relay_username,
            password=config.relay_password(),
            tls=None if config.relay_tls_ca_file is None else tls_context(config.relay_tls_ca_file),
            clock=clock.now,
            sleep=clock.sleep,
            nodes=_relay_nodes(fleet),
            reorder_s=config.relay_reorder_s,
        )
    if config.source == "replay":
        assert config.replay_file is not None
        return ReplaySource(config.replay_file, realtime=config.replay_realtime, sleep=clock.sleep)
    simulation = simulate(Scenario(seed=config.simulate_seed, start=clock.now(), vary=False))
    return SimulatedSource(
        simulation, clock=clock.now, sleep=clock.sleep, watchdog_s=config.watchdog_s
    )


class PresenceService:
    """The hub's presence feature; started and stopped with the hub."""

    def __init__(self, services: Services, source: AdvertisementSource | None = None) -> None:
        config = services.config.beacons
        self.services = services
        self.config = config
        fleet = load_fleet(config.fleet_file) if config.fleet_file else None
        self.source = source or make_source(config, services, fleet)
        # A flat-out replay runs on the trace's own time; everything else on the hub's clock,
        # the engine on a time that NTP's steps do not move (hub.clock.WallSteps).
        self._trace_clock = TraceClock()
        live = not isinstance(self.source, ReplaySource)
        self._wall_step = WallSteps(services.clock) if live else None
        presence_now: Callable[[], float] = services.clock.now if live else self._trace_clock
        self._now = presence_now
        self.engine = PresenceEngine(
            config.presence, self._wall_step.steady if self._wall_step else self._trace_clock
        )
        prefix = bytes.fromhex(config.chain_prefix or "00" * 8)
        # A simulated store's phones belong to its own simulated members (kept in memory only:
        # they resolve, but without a consenting row in the member table get no reminders).
        self._simulated_keys: dict[str, bytes] = {}
        if isinstance(self.source, SimulatedSource):
            prefix = self.source.simulation.members.chain_prefix
            self._simulated_keys = self.source.simulation.members.keys
        self.resolver = TokenResolver(prefix, {**self._simulated_keys, **services.members.keys()})
        self.pipeline = PresencePipeline(self.resolver, self.engine, self._trace_clock,
                                         self._wall_step)
        self._record_failures = FailureLog(_log, "recording presence events",
                                           services.clock.monotonic)
        self.records_let_go = 0  # presence events never recorded (hub_presence_unrecorded_total)
        self.rules = ReminderRules(
            services.clock, services.bus, config.reminders, services.config.store.timezone
        )
        self.health = (
            BeaconHealthService(
                services.db,
                services.clock,
                services.bus,
                fleet,
                config.health,
                presence_now,
                self._wall_step,
            )
            if fleet is not None
            else None
        )
        self._events: asyncio.Queue[PresenceEvent] = asyncio.Queue()
        self._arrived: dict[str, float] = {}  # member inside -> their "arrived" event's time
        #: Times the member keys were read and handed to the resolver after the table changed.
        self.key_reloads = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.source_done = asyncio.Event()
        self.source_error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start receiving; a source that cannot start is logged, not fatal to the hub."""
        self.services.bus.bind(asyncio.get_running_loop())
        members = self.services.bus.subscribe([MEMBERS_CHANGED])
        orders = self.services.bus.subscribe([ORDER_STATUS])
        self._tasks = [
            asyncio.create_task(self._receive(), name="presence-source"),
            asyncio.create_task(self._consume(), name="presence-record"),
            asyncio.create_task(self._tick(), name="presence-tick"),
            asyncio.create_task(self._reload_keys(members), name="presence-keys"),
            asyncio.create_task(self._tokens_ahead(), name="presence-tokens"),
            asyncio.create_task(self._ready_while_inside(orders), name="presence-ready"),
        ]
        if self.health is not None:
            self._tasks.append(asyncio.create_task(self._check_health(), name="beacon-health"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def settled(self) -> None:
        """Wait until the source has finished (a replay) and every event is recorded."""
        await self.source_done.wait()
        await self._events.join()

    # -- the hot path --------------------------------------------------------------------------

    def on_advertisement(self, adv: Advertisement) -> None:
        """Called by the source for every advertisement (on the event loop, in memory only)."""
        if self.health is not None:
            self.health.observe(adv)
        self._queue(self.pipeline.feed(adv))

    def _queue(self, events: list[PresenceEvent]) -> None:
        """Hand ``events`` to the recorder, noting each member's arrival as it was stamped."""
        for event in events:
            if event.event == "arrived":
                self._arrived[event.member] = event.t
            elif event.event == "left":
                self._arrived.pop(event.member, None)
            self._events.put_nowait(event)

    @property
    def source_problem(self) -> str | None:
        """Why no advertisements arrive now (the scan cannot start and is being retried, or the
        source stopped), or None. Staff see it in store health: without it every beacon would
        turn "missing" and the beacons would be blamed for the scanner."""
        error = self.source_error or getattr(self.source, "error", None)
        return None if error is None else str(error)

    def present(self) -> list[MemberView]:
        """Members inside now, their times on the wall clock: ``arrived`` exactly as the
        arrival was stamped and recorded (the reminder rules know a visit by it; moved by the
        wall clock's step as it is now, a visit before an NTP step was taken for another and
        its order reminded again)."""
        step = self._wall_step() if self._wall_step else 0.0
        return [view.moved(step, self._arrived.get(view.member))
                for view in self.engine.present()]

    # -- background work -----------------------------------------------------------------------

    async def _receive(self) -> None:
        try:
            if self._live_time:
                # The first advertisement finds its windows made (off the loop), not building.
                await self.resolver.prepare(self._now())
            await self.source.run(self.on_advertisement)
        except Exception as exc:  # noqa: BLE001 - reported, the rest of the hub keeps running
            self.source_error = exc
            _log.error("presence source %s stopped: %s", self.source.name, exc)
        finally:
            self.source_done.set()

    async def _consume(self) -> None:
        while True:
            event = await self._events.get()
            try:
                await self._record_in_time(event)
            finally:
                self._events.task_done()

    async def _record_in_time(self, event: PresenceEvent) -> None:
        """Record ``event``, trying again while the disk refuses it (see ``RECORD_RETRY_S``);
        any other failure lets it go at once, so that one bad write does not hold presence up."""
        clock = self.services.clock
        first = clock.monotonic()
        while True:
            try:
                await self.services.db.write(self.record, event)
            except Exception as exc:  # noqa: BLE001 - one bad write must not stop presence
                disk = storage_failure(exc, self.services.db.path) is not None
                retried = (f"; tried again every {RECORD_RETRY_S:.0f} s for up to "
                           f"{RECORD_RETRY_FOR_S:.0f} s") if disk else ""
                self._record_failures.failed(exc, "recording a presence event (%s) failed%s",
                                             event.event, retried)
                if disk and clock.monotonic() - first < RECORD_RETRY_FOR_S:
                    await clock.sleep(RECORD_RETRY_S)
                    continue
                self.records_let_go += 1
                if disk:
                    _log.error("a presence event (%s) could not be recorded for %.0f s and is "
                               "let go (the database: %s)", event.event, RECORD_RETRY_FOR_S,
                               exc)
                return
            self._record_failures.succeeded()
            return

    def record(self, event: PresenceEvent) -> list[Reminder]:
        """Store one presence event, push it to the staff feed and, on arrival, apply the
        reminder rules, all in one transaction (a write: runs on the writer thread)."""
        services = self.services
        with services.db.transaction() as tx:
            tx.execute(
                "INSERT INTO presence_events (t, member_id, event, zone) VALUES (?, ?, ?, ?)",
                (event.t, event.member, event.event, event.zone),
            )
            bus, data = (
                services.bus,
                {"t": event.t, "member": event.member, "event": event.event, "zone": event.zone},
            )
            tx.after_commit(lambda: bus.publish(Event(PRESENCE, data)))
            if event.event == "arrived" and self.config.reminders.enabled:
                return self.rules.on_arrival(tx, event.member, event.t, event.zone)
        return []

    async def _tick(self) -> None:
        """Decide departures when time passes without advertisements (old history is deleted
        by ``hub.retention``)."""
        clock = self.services.clock
        while True:
            await clock.sleep(TICK_S)
            # Relayed sightings are held to be applied in time order: departures are decided
            # only up to what has been applied, or one held back could not keep its member.
            source = self.source
            now = source.release() if isinstance(source, MqttRelaySource) else self._now()
            self._queue(self.pipeline.expire(now))

    @property
    def _live_time(self) -> bool:
        """Presence runs on the hub's clock (not a flat-out replay's own time)."""
        return self._wall_step is not None

    async def _tokens_ahead(self) -> None:
        """Make each window's tokens at the turn before they are needed, on a worker thread.
        A replay runs on its trace's time: its few windows are made when first looked up."""
        if not self._live_time:
            return
        clock = self.services.clock
        while True:
            # again while the clock turned a window during the build (a slow build on a busy
            # machine): a sleep reckoned from before it missed that turn, and its window was
            # then built at a lookup, on the loop
            while not self.resolver.ready(clock.now()):
                await self.resolver.prepare(clock.now())
            now = clock.now()
            await clock.sleep(WINDOW_S - now % WINDOW_S + 1.0)

    async def _reload_keys(self, subscription: Subscription) -> None:
        """Reload the keys after the member table changed: the changes that arrived meanwhile
        (a burst of opt-ins) are all covered by one read, so they make one reload."""
        while True:
            await subscription.get()
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
            keys = await self.services.db.read(self.services.members.keys)
            self.resolver.set_keys({**self._simulated_keys, **keys})
            self.key_reloads += 1

    async def _ready_while_inside(self, subscription: Subscription) -> None:
        """An order made ready while its member is in the store is reminded at once, as part of
        the visit it belongs to (the rules skip orders that visit was already told of)."""
        while True:
            event = await subscription.get()
            member, state = event.data.get("member_id"), event.data.get("state")
            if state != "ready" or not self.config.reminders.enabled:
                continue
            for view in self.present():
                if view.member == member:
                    await self.services.db.write(self._remind, view)

    def _remind(self, view: MemberView) -> list[Reminder]:
        with self.services.db.transaction() as tx:
            return self.rules.on_arrival(tx, view.member, view.arrived, view.zone)

    async def _check_health(self) -> None:
        assert self.health is not None
        while True:
            await self.services.clock.sleep(self.config.health.check_every_s)
            await self.services.db.write(self.health.check)


class PresenceFigures(Collector):
    """Presence figures read at scrape time: what the radio delivers, whether it can, what
    relay nodes send that is refused and beacon telemetry that does not decrypt (otherwise only
    in one log line per node or beacon)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        presence = self.services.presence
        if presence is None:
            return
        pipeline = presence.pipeline
        yield CounterMetricFamily("hub_presence_advertisements",
                                  "Advertisements received from the source.",
                                  value=pipeline.advertisements)
        yield CounterMetricFamily("hub_presence_resolved",
                                  "Advertisements resolved to an opted-in member.",
                                  value=pipeline.resolved)
        yield CounterMetricFamily("hub_presence_key_reloads",
                                  "Member key reloads after the member table changed (a burst "
                                  "of changes is one).",
                                  value=presence.key_reloads)
        yield CounterMetricFamily("hub_presence_unrecorded",
                                  "Presence events let go unrecorded (the database refused them "
                                  "for 10 minutes, or failed otherwise).",
                                  value=presence.records_let_go)
        yield GaugeMetricFamily("hub_presence_source_ok",
                                "1 while the source delivers; 0 when it cannot scan or stopped.",
                                value=0 if presence.source_problem or presence.source_done.is_set()
                                else 1)
        yield GaugeMetricFamily("hub_presence_members_inside", "Members in the store now.",
                                value=len(presence.present()))
        rejected = CounterMetricFamily("hub_presence_relay_rejected",
                                       "Relay node lines or messages refused.", labels=["node"])
        for node, count in getattr(presence.source, "rejected", {}).items():
            rejected.add_metric([node], count)
        yield rejected
        late = CounterMetricFamily("hub_presence_relay_late",
                                   "Relay node lines applied late, after newer ones.",
                                   labels=["node"])
        for node, count in getattr(presence.source, "late", {}).items():
            late.add_metric([node], count)
        yield late
        etlm = CounterMetricFamily("hub_beacon_etlm_rejected",
                                   "Encrypted telemetry from a declared beacon that did not "
                                   "decrypt.", labels=["beacon"])
        if presence.health is not None:
            for beacon, count in presence.health.tracker.etlm_rejected.items():
                etlm.add_metric([beacon], count)
        yield etlm


def setup(services: Services) -> None:
    """Feature wiring: presence runs only when ``[beacons] enabled``."""
    if services.config.beacons.enabled:
        services.presence = PresenceService(services)
        services.lifecycle.append(services.presence)
        services.metrics.registry.register(PresenceFigures(services))
