"""The ``retail-hub`` command line. Each area's commands live in their own module; this file only
assembles them."""

from __future__ import annotations

import click

from hub import logs
from hub.cli import (
    backup,
    beacons,
    broker,
    catalog,
    config,
    demo,
    doctor,
    orders,
    run,
    shop,
    stock,
    vision,
    voice,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """The in-store retail hub."""
    logs.configure(verbose)


main.add_command(run.run)
main.add_command(demo.demo)
main.add_command(config.config)
main.add_command(catalog.catalog)
main.add_command(stock.stock)
main.add_command(orders.orders)
main.add_command(doctor.doctor)
main.add_command(backup.backup)
main.add_command(backup.restore)
main.add_command(shop.shop)
main.add_command(broker.broker)
main.add_command(vision.vision)
main.add_command(voice.voice)
main.add_command(beacons.beacons)
