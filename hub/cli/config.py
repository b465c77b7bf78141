"""``retail-hub config``: check a config file before starting the hub with it."""

from __future__ import annotations

from pathlib import Path

import click

from hub.cli.common import check_files
from hub.config import ConfigError, check_config


@click.group()
def config() -> None:
    """Work with the hub's config file."""


@config.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def check(file: Path) -> None:
    """Print every problem in FILE with its line, or 'ok'."""
    try:
        cfg, warnings = check_config(file)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    check_files(cfg, file)
    for warning in warnings:  # run starts without these features: the service still starts
        click.echo(f"warning: {file}: {warning}", err=True)
    click.echo(f"{file}: ok (store {cfg.store.id})")
    if cfg.web.load_staff_token() is None:
        click.echo(
            f"note: no staff token (set {cfg.web.staff_token_env} or web.staff_token_file); "
            "staff endpoints will refuse every request", err=True,
        )


@config.command("reference")
def reference() -> None:
    """Print every setting of hub.toml as Markdown (the README's configuration section)."""
    from hub.config.reference import render

    click.echo(render(), nl=False)
