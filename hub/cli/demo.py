"""``retail-hub demo``: the whole demo on localhost (broker, online shop, hub with a simulated
store), ready to try."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import click

from hub.app import RunningHub
from hub.cli.common import serve
from hub.config import ConfigError
from hub.demo.store import STORE_ID, DemoSetup, prepare_demo
from sync.broker_setup import BrokerSetupError

MOSQUITTO = ("mosquitto", "/usr/sbin/mosquitto")


class Companion:
    """A process the demo runs beside the hub (mosquitto, the shop), logging to a file and
    stopped with the demo."""

    def __init__(self, name: str, command: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_for_port(self, port: int, timeout: float = 20.0) -> bool:
        """True once ``port`` on loopback accepts connections; False if the process died or
        the time ran out (its log says why)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _mosquitto() -> str | None:
    return next((found for name in MOSQUITTO if (found := shutil.which(name))), None)


def _port_free(port: int) -> bool:
    """Whether nothing listens on ``port``. SO_REUSEADDR as the servers themselves set it: a
    demo stopped a moment ago leaves its connections in TIME_WAIT, which does not keep the
    broker or the web servers from starting again, so it must not stop the demo either."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@click.command()
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False),
              default="var/demo", show_default=True, help="Folder for the demo's files.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="The hub's web port (kiosk, staff, API).")
@click.option("--shop-port", type=click.IntRange(1, 65535), default=8090, show_default=True,
              help="The demo online shop's API port.")
@click.option("--broker-port", type=click.IntRange(1, 65535), default=18830, show_default=True,
              help="Port of the demo's own mosquitto (loopback only).")
@click.option("--fresh", is_flag=True, help="Delete the data folder first and start over.")
def demo(data_dir: Path, port: int, shop_port: int, broker_port: int, fresh: bool) -> None:
    """Run the demo until Ctrl-C: mosquitto (when installed), the online shop, and the hub with
    the demo store (81 grocery products) and simulated shoppers walking in and out."""
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    for name, wanted in (("--shop-port", shop_port), ("--broker-port", broker_port)):
        if not _port_free(wanted):
            raise click.UsageError(f"port {wanted} is in use; choose another with {name}")
    try:
        setup = prepare_demo(data_dir, port, shop_port, broker_port,
                             run_as_root=os.geteuid() == 0)
    except (ConfigError, BrokerSetupError) as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    click.echo(f"demo catalogue: {setup.catalogue.to_json()['added']} products added, "
               f"{len(setup.catalogue.unchanged)} already there; {setup.members} members, "
               f"{len(setup.ready_orders)} orders ready for pickup")
    with ExitStack() as companions:
        broker = _start_broker(setup, broker_port)
        if broker is not None:
            companions.callback(broker.stop)
        shop = Companion("shop", [sys.executable, "-m", "hub.cli", "shop", "--config",
                                  str(setup.files.shop_config)],
                         setup.files.shop_config.parent / "shop.log")
        companions.callback(shop.stop)
        if not shop.wait_for_port(shop_port):
            click.echo(f"the demo shop did not start; see {shop.log}", err=True)
            raise SystemExit(1)
        serve(setup.config, lambda hub: _tell(hub, setup, shop_port, broker is not None))


def _start_broker(setup: DemoSetup, port: int) -> Companion | None:
    """The demo's mosquitto, or None (with a hint) where it is not installed or will not run."""
    binary = _mosquitto()
    if binary is None:
        click.echo("mosquitto is not installed: the hub queues its sync messages until a broker "
                   "appears (install it with 'make system-packages').")
        return None
    config = setup.files.broker_config
    broker = Companion("mosquitto", [binary, "-c", str(config)], config.parent / "mosquitto.log")
    if not broker.wait_for_port(port):
        broker.stop()
        click.echo(f"mosquitto did not start (see {broker.log}); the hub queues its sync "
                   "messages until a broker appears.")
        return None
    return broker


def _tell(hub: RunningHub, setup: DemoSetup, shop_port: int, with_broker: bool) -> None:
    shop = f"http://127.0.0.1:{shop_port}"
    member = next(iter(setup.ready_orders.values()), "m00001")
    click.echo(f"\nDemo store '{setup.config.store.name}' is running.")
    click.echo(f"  Kiosk:        {hub.url}/kiosk")
    click.echo(f"  Staff:        {hub.url}/staff   (token in {setup.config.web.staff_token_file})")
    click.echo(f"  Store API:    {hub.url}/api/products?q=oat%20milk")
    click.echo(f"  Online shop:  {shop}/api/stores/{STORE_ID}/stock")
    click.echo(f"  Reminders:    {shop}/api/members/{member}/reminders")
    click.echo(f"  Metrics:      {hub.url}/metrics")
    click.echo(f"  Logs:         {setup.files.folder}/shop/shop.log"
               + (f", {setup.files.folder}/broker/mosquitto.log" if with_broker else ""))
    if setup.ready_orders:
        click.echo("Simulated shoppers walk in over the next hour; members with a ready order "
                   f"({', '.join(setup.ready_orders)}) get an arrival reminder and the staff "
                   "page an alert.")
    else:
        click.echo("Simulated shoppers walk in over the next hour; the demo's orders are no "
                   "longer ready (start with --fresh for new ones).")
    click.echo("Press Ctrl-C to stop.")
