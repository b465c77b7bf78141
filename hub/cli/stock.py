"""``retail-hub stock``: record movements and look at stock from the shell."""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import ValidationError

from hub.cli.common import config_option, open_services, print_json, reports_errors
from hub.inventory import PUBLIC_REASONS, MovementIn


@click.group()
def stock() -> None:
    """Stock levels and movements."""


# A negative QTY ("stock move GS-007 -2 adjustment") is an argument, not an unknown option.
@stock.command("move", context_settings={"ignore_unknown_options": True})
@click.argument("sku")
@click.argument("qty", type=int)
@click.argument("reason", type=click.Choice(sorted(PUBLIC_REASONS)))
@click.option("--ref", help="Client reference; a movement with a known reference is applied once.")
@click.option("--note", help="Free text for staff.")
@config_option
@reports_errors
def move(sku: str, qty: int, reason: str, ref: str | None, note: str | None,
         config_path: Path) -> None:
    """Record a movement of QTY units of SKU (e.g. 'stock move GS-007 12 receipt'); QTY is the
    change, negative for units taken off ('stock move GS-007 -2 adjustment')."""
    try:
        movement = MovementIn(sku=sku, qty=qty, reason=reason, ref=ref, note=note)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise click.BadParameter("; ".join(e["msg"] for e in exc.errors())) from None
    with open_services(config_path) as svc:
        result, duplicate = svc.inventory.record(movement)
    body = result.to_json()
    body["duplicate"] = duplicate
    print_json(body)


@stock.command("show")
@click.argument("sku", required=False)
@config_option
@reports_errors
def show(sku: str | None, config_path: Path) -> None:
    """Stock of SKU, or of every product."""
    with open_services(config_path) as svc:
        if sku:
            print_json(svc.inventory.stock(sku).__dict__)
        else:
            print_json([level.__dict__ for level in svc.inventory.all_stock()])
