"""The ``retail-hub`` command line. Each area's commands live in their own module; this file only
assembles them."""

from __future__ import annotations

import logging

import click

from hub.cli import catalog, config, demo, orders, run, stock


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """The in-store retail hub."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


main.add_command(run.run)
main.add_command(demo.demo)
main.add_command(config.config)
main.add_command(catalog.catalog)
main.add_command(stock.stock)
main.add_command(orders.orders)
