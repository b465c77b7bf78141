"""``retail-hub shop``: the reference online-shop service (its own process and database)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from sync.shop.config import ShopConfigError, load_shop_config
from sync.shop.service import ShopService, serve_until_stopped


@click.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default="shop.toml",
              envvar="RETAIL_SHOP_CONFIG", show_default=True, help="The shop's TOML config.")
def shop(config_path: Path) -> None:
    """Run the online-shop service until Ctrl-C."""
    try:
        config = load_shop_config(config_path)
        config.mqtt.broker_settings(config.mqtt.client_id)  # fail now on an unreadable password
    except (ShopConfigError, OSError) as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None

    def started(service: ShopService) -> None:
        click.echo(f"shop service serving at {service.url}")

    asyncio.run(serve_until_stopped(config, started))
