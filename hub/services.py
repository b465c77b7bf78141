"""The running hub's objects, built once and shared by the web app, the CLI and background tasks.

Core services are built here; each optional feature (photo search, voice search, presence,
sync) has a ``setup(services)`` function listed in ``FEATURES`` that attaches its own service and
any background work to ``lifecycle``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import SecretStr

from hub.catalog import Catalog
from hub.clock import Clock, SystemClock
from hub.config import HubConfig
from hub.database_file import DatabaseFileWatch
from hub.db import Database
from hub.events import EventBus
from hub.inventory import Inventory
from hub.members import MemberDirectory
from hub.metrics import Metrics
from hub.nearby import NearbyStock
from hub.orders import OrderService
from hub.photo_search import PhotoService
from hub.photo_search import setup as photo_setup
from hub.presence import PresenceService
from hub.presence import setup as presence_setup
from hub.sync_link import HubSync
from hub.sync_link import setup as sync_setup
from hub.text_search import TextSearch
from hub.voice_search import VoiceService
from hub.voice_search import setup as voice_setup


class Lifecycle(Protocol):
    """Background work that starts with the hub and stops with it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Services:
    """Everything a request handler or command may need."""

    config: HubConfig
    clock: Clock
    db: Database
    bus: EventBus
    metrics: Metrics
    inventory: Inventory
    catalog: Catalog
    orders: OrderService
    members: MemberDirectory
    text_search: TextSearch
    staff_token: SecretStr | None
    nearby: NearbyStock  # other stores' stock, filled by sync when [mqtt] nearby_stores is set
    lifecycle: list[Lifecycle] = field(default_factory=list)
    sync: HubSync | None = None  # the link to the online shop, when [mqtt] enabled
    photo_search: PhotoService | None = None  # photo search, when [vision] enabled
    voice_search: VoiceService | None = None  # voice search, when [voice] enabled
    presence: PresenceService | None = None  # BLE arrivals and reminders, when [beacons] enabled
    database_file: DatabaseFileWatch | None = None  # while the hub runs

    def storage_problem(self) -> str | None:
        """Why the hub cannot keep what it is given (database file gone, disk full or
        read-only), for the health checks; None when it can."""
        if self.database_file is not None and self.database_file.problem():
            return self.database_file.problem()
        if self.db.write_failure is not None:
            return self.db.write_failure.message
        return self.db.file_problem()

    def close(self) -> None:
        self.db.close()


FeatureSetup = Callable[[Services], None]

#: Feature wiring run by ``build_services`` in this order.
FEATURES: list[FeatureSetup] = [sync_setup, photo_setup, voice_setup, presence_setup]


def build_services(config: HubConfig, clock: Clock | None = None,
                   with_features: bool = True) -> Services:
    """Open the database (applying migrations) and build every service for ``config``."""
    clock = clock or SystemClock()
    db = Database(config.store.database)
    db.migrate()
    bus = EventBus()
    metrics = Metrics()
    metrics.watch_store(db, clock.now)
    inventory = Inventory(db, clock, bus, metrics)
    catalog = Catalog(
        db, clock, inventory, config.store.images_dir, bus, config.vision.max_pixels
    )
    services = Services(
        config=config,
        clock=clock,
        db=db,
        bus=bus,
        metrics=metrics,
        inventory=inventory,
        catalog=catalog,
        orders=OrderService(db, clock, inventory, config.orders, bus),
        members=MemberDirectory(db, clock, bus),
        text_search=TextSearch(catalog),
        staff_token=config.web.load_staff_token(),
        nearby=NearbyStock(config.mqtt.nearby_stores),
    )
    if with_features:
        for setup in FEATURES:
            setup(services)
    return services
