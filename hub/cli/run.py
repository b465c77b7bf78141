"""``retail-hub run``: the hub itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from hub import logs
from hub.app import RunningHub, serve_until_stopped
from hub.cli.common import config_option, load


@click.command()
@config_option
@click.pass_context
def run(ctx: click.Context, config_path: Path) -> None:
    """Run the hub until Ctrl-C."""
    cfg = load(config_path)
    logs.configure(ctx.find_root().params.get("verbose", False), store_id=cfg.store.id)
    try:
        cfg.web.load_staff_token()
    except (OSError, ValueError) as exc:
        click.echo(f"{config_path}: staff token: {exc}", err=True)
        raise SystemExit(2) from None

    def started(hub: RunningHub) -> None:
        click.echo(f"retail hub for store {cfg.store.id} serving at {hub.url}")

    asyncio.run(serve_until_stopped(cfg, started))
