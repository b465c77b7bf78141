"""Setting up the demo store: config files, a staff token, the demo catalogue, a broker set-up
for the store and the shop, and members whose phones walk through the simulated store."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from beacons.simulator import Scenario, simulate
from hub.catalog import ImportReport
from hub.config import HubConfig, load_config
from hub.members import MemberIn
from hub.orders import OrderIn, OrderLineIn
from hub.services import Services, build_services
from sync.broker_setup import BrokerPlan, write_broker_config

CATALOG = Path(__file__).parent / "catalog.json"
IMAGES = Path(__file__).parent / "images"
#: Embeddings of the Grocery Store train photos made with the shipped photo model (written by
#: ``retail-hub vision pack``): photo search then knows each product from shop photos, not only
#: from its catalogue image, without shipping the photos.
REFERENCE_PACK = Path(__file__).parent / "reference-pack.npz"
#: The simulated shop floor's own shelf beacons, declared so store health tracks them.
FLEET = Path(__file__).parent / "fleet.yaml"

STORE_ID = "demo-stockholm"
SIMULATION_SEED = 7
#: Members of the simulated store who have an order waiting, so their arrival shows a reminder.
READY_ORDERS = 6
ORDER_LINES = (("GS-045", 2), ("GS-001", 6), ("GS-044", 1), ("GS-070", 3), ("GS-012", 1),
               ("GS-030", 2))

DEMO_CONFIG = """\
# Demo store written by 'retail-hub demo'. Edit freely; it is kept between runs
# ('retail-hub demo --fresh' writes it again).
[store]
id = "{store}"
name = "Demo Market Stockholm"
timezone = "Europe/Stockholm"
currency = "SEK"
database = "hub.db"
images_dir = "images"

[web]
host = "127.0.0.1"
port = {port}
staff_token_file = "staff-token"

# Sync with the demo shop through the demo's own mosquitto (loopback only, per-store ACL).
# Without a broker the hub queues everything and sends it once one appears.
[mqtt]
enabled = true
port = {broker_port}
username = "{store}"
password_file = "broker/credentials/{store}.password"

# Shoppers walk through a simulated store: the same presence engine as a real adapter.
[beacons]
enabled = true
source = "simulate"
simulate_seed = {seed}

[beacons.reminders]
# The demo runs at any hour: equal start and end turn quiet hours off.
quiet_start = 00:00:00
quiet_end = 00:00:00
"""

SHOP_CONFIG = """\
# The demo's online-shop service, written by 'retail-hub demo'.
database = "shop.db"

[http]
port = {port}

[mqtt]
port = {broker_port}
username = "shop"
password_file = "../broker/credentials/shop.password"
"""


@dataclass(frozen=True)
class DemoFiles:
    """Where the demo's parts keep their files."""

    folder: Path

    @property
    def hub_config(self) -> Path:
        return self.folder / "hub.toml"

    @property
    def shop_config(self) -> Path:
        return self.folder / "shop" / "shop.toml"

    @property
    def broker_config(self) -> Path:
        return self.folder / "broker" / "mosquitto.conf"


@dataclass(frozen=True)
class DemoSetup:
    """What ``prepare_demo`` did."""

    config: HubConfig
    files: DemoFiles
    catalogue: ImportReport
    members: int
    ready_orders: dict[str, str]  # order id -> member


def prepare_demo(data_dir: Path, port: int, shop_port: int = 8090,
                 broker_port: int = 18830, run_as_root: bool = False) -> DemoSetup:
    """Write the configs, token and broker files once; import the catalogue and seed the demo
    members and their ready orders (all idempotent, so a second run keeps what the first did)."""
    files = DemoFiles(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    _write_once(files.hub_config, DEMO_CONFIG.format(
        store=STORE_ID, port=port, broker_port=broker_port, seed=SIMULATION_SEED))
    files.shop_config.parent.mkdir(exist_ok=True)
    _write_once(files.shop_config, SHOP_CONFIG.format(port=shop_port, broker_port=broker_port))
    token_file = data_dir / "staff-token"
    if not token_file.exists():
        token_file.touch(mode=0o600)
        token_file.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
    write_broker_config(BrokerPlan(
        folder=files.broker_config.parent, stores=[STORE_ID], port=broker_port,
        bind="127.0.0.1", persistence=False, run_as="root" if run_as_root else None))
    config = load_config(files.hub_config)
    config.web.port = port
    if config.vision.reference_pack is None:
        config.vision.reference_pack = REFERENCE_PACK
    if config.beacons.fleet_file is None and config.beacons.source == "simulate":
        config.beacons.fleet_file = FLEET
    services = build_services(config, with_features=False)
    try:
        report = services.catalog.import_file(CATALOG, IMAGES)
        members, orders = _seed_shoppers(services, config.beacons.simulate_seed)
    finally:
        services.close()
    return DemoSetup(config, files, report, members, orders)


def _seed_shoppers(services: Services, seed: int) -> tuple[int, dict[str, str]]:
    """Every phone of the simulated store belongs to a member who opted in; the first few
    members to walk in have an order ready for pickup."""
    simulation = simulate(Scenario(seed=seed, vary=False))
    for member, key in simulation.members.keys.items():
        services.members.upsert(MemberIn(id=member, display_name=f"Shopper {member[1:]}",
                                         consent=True, beacon_key=key.hex()))
    visitors = [e["member"] for e in sorted(simulation.truth, key=lambda e: e["t"])
                if e.get("event") == "arrived"]
    first = list(dict.fromkeys(visitors))[:READY_ORDERS]
    orders = {}
    for number, (member, (sku, qty)) in enumerate(zip(first, ORDER_LINES, strict=False), 1):
        order_id = f"demo-{number:04d}"
        order, known = services.orders.place(
            OrderIn(id=order_id, member=member, lines=[OrderLineIn(sku=sku, qty=qty)]),
            actor="demo")
        if not known and order.state == "accepted":
            services.orders.mark_ready(order_id, actor="demo")
        # a restarted demo's orders may have been collected or cancelled meanwhile
        if services.orders.get(order_id).state == "ready":
            orders[order_id] = member
    return len(simulation.members.keys), orders


def _write_once(path: Path, text: str) -> None:
    if not path.exists():
        path.write_text(text, encoding="utf-8")
