"""How the store treats click-and-collect orders."""

from __future__ import annotations

from pydantic import Field

from hub.config.base import StrictModel


class OrdersConfig(StrictModel):
    """Order intake and the pickup window that bounds how long stock stays reserved."""

    auto_accept: bool = Field(
        default=True,
        description="Reserve stock and accept an online order as soon as it arrives; when false, "
        "orders wait as 'pending' for staff to accept.",
    )
    pickup_window_hours: float = Field(
        default=48.0,
        gt=0,
        le=24 * 30,
        description="Hours an accepted order keeps its reservation before it expires and the "
        "stock is released.",
    )
    max_lines: int = Field(default=50, ge=1, le=500, description="Most lines one order may have.")
    max_line_qty: int = Field(
        default=99, ge=1, le=10_000, description="Most units of one product in one order line."
    )
