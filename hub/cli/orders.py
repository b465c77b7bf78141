"""``retail-hub orders``: list, place and progress click-and-collect orders."""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import ValidationError

from hub.cli.common import config_option, open_services, print_json, reports_errors
from hub.orders import TRANSITIONS, OrderIn


@click.group()
def orders() -> None:
    """Click-and-collect orders."""


@orders.command("list")
@click.option("--state", type=click.Choice(sorted(TRANSITIONS)), help="Only orders in STATE.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@config_option
@reports_errors
def list_(state: str | None, limit: int, config_path: Path) -> None:
    """Orders, newest first."""
    with open_services(config_path) as svc:
        print_json([o.to_json() for o in svc.orders.list(state=state, limit=limit)])


@orders.command("place")
@click.argument("order_id")
@click.argument("lines", nargs=-1, required=True)
@click.option("--member", help="Member id of the customer.")
@config_option
@reports_errors
def place(order_id: str, lines: tuple[str, ...], member: str | None, config_path: Path) -> None:
    """Place ORDER_ID for LINES given as SKU:QTY (e.g. 'orders place A1 GS-007:2'). Exits 1 when
    the order ends rejected (a SKU not sold here, too little stock), so a script can tell."""
    parsed = []
    for line in lines:
        sku, sep, qty = line.partition(":")
        if not sep or not qty.isdigit():
            raise click.BadParameter(f"{line!r}: write each line as SKU:QTY")
        parsed.append({"sku": sku, "qty": int(qty)})
    try:
        order_in = OrderIn(id=order_id, member=member, lines=parsed)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise click.BadParameter("; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
    with open_services(config_path) as svc:
        order, known = svc.orders.place(order_in, actor="staff")
    print_json({**order.to_json(), "already_known": known})
    if order.state == "rejected":
        click.echo(f"error: order {order.id} was rejected: {order.reason}", err=True)
        raise SystemExit(1)


@orders.command("set")
@click.argument("order_id")
@click.argument("state", type=click.Choice(["accepted", "rejected", "ready", "collected",
                                            "cancelled"]))
@click.option("--reason", help="Why (for rejected or cancelled).")
@config_option
@reports_errors
def set_(order_id: str, state: str, reason: str | None, config_path: Path) -> None:
    """Move ORDER_ID to STATE (e.g. 'orders set A1 ready')."""
    with open_services(config_path) as svc:
        print_json(svc.orders.transition(order_id, state, reason, actor="staff").to_json())
