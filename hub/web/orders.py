"""Staff order API: list, place (for phone and counter orders), and move orders through their
states. Online orders arrive over sync and use the same service."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.orders import OrderIn
from hub.web.common import int_query, json_response, read_json, require_staff, services


class TransitionIn(BaseModel):
    """A requested state change."""

    model_config = ConfigDict(extra="forbid")

    to: Literal["accepted", "rejected", "ready", "collected", "cancelled"] = Field(
        description="Target state."
    )
    reason: str | None = Field(default=None, max_length=300, description="Why (for reject/cancel).")


async def list_orders(request: web.Request) -> web.Response:
    require_staff(request)
    svc = services(request)
    state = request.query.get("state")
    member = request.query.get("member")
    limit = int_query(request, "limit", 100, 1, 1000)
    orders = await svc.db.read(svc.orders.list, state, member, limit)
    return json_response({"orders": [o.to_json() for o in orders]})


async def get_order(request: web.Request) -> web.Response:
    require_staff(request)
    svc = services(request)
    order_id = request.match_info["order_id"]
    order = await svc.db.read(svc.orders.get, order_id)
    history = await svc.db.read(svc.orders.history, order_id)
    return json_response({**order.to_json(), "history": history})


async def place(request: web.Request) -> web.Response:
    require_staff(request)
    svc = services(request)
    order_in = await read_json(request, OrderIn)
    order, known = await svc.db.write(svc.orders.place, order_in, "staff")
    return json_response(order.to_json(), status=200 if known else 201)


async def transition(request: web.Request) -> web.Response:
    require_staff(request)
    svc = services(request)
    change = await read_json(request, TransitionIn)
    order = await svc.db.write(
        svc.orders.transition, request.match_info["order_id"], change.to, change.reason
    )
    return json_response(order.to_json())


def setup(app: web.Application) -> None:
    app.router.add_get("/api/orders", list_orders)
    app.router.add_post("/api/orders", place)
    app.router.add_get("/api/orders/{order_id}", get_order)
    app.router.add_post("/api/orders/{order_id}/transition", transition)
