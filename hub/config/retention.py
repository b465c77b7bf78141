"""How long the hub keeps records it no longer needs, personal data first."""

from __future__ import annotations

from pydantic import Field

from hub.config.base import StrictModel


class RetentionConfig(StrictModel):
    """Ages after which rows are deleted. The stock ledger and finished orders are business
    records: they are kept longer than a financial year, and only what the shop has; the outbox
    is never pruned here (the shop's acks empty it)."""

    presence_days: float = Field(
        default=30.0, gt=0, le=3650,
        description="Presence events (who arrived, which zone, when) older than this are "
        "deleted: they are personal data and only recent visits matter to the rules.",
    )
    reminders_days: float = Field(
        default=90.0, gt=0, le=3650,
        description="Arrival reminders and staff alerts (sent or held) older than this are "
        "deleted.",
    )
    beacon_alerts_days: float = Field(
        default=180.0, gt=0, le=3650,
        description="Beacon fleet alerts (missing, battery low) older than this are deleted.",
    )
    sync_inbox_days: float = Field(
        default=30.0, ge=7, le=3650,
        description="Ids of commands already applied (kept so a re-sent command is not applied "
        "twice) older than this are deleted once the shop has acknowledged their result: the "
        "shop re-sends a command until it has the result, so an id whose result it has not "
        "had stays however old. Cancels of orders that never reached the store go after the "
        "same age.",
    )
    dead_letters_days: float = Field(
        default=30.0, gt=0, le=3650,
        description="Refused incoming sync messages kept for diagnosis are deleted after this.",
    )
    ledger_days: float = Field(
        default=400.0, ge=366, le=36_500,
        description="Stock ledger rows older than this are deleted once the shop has "
        "acknowledged them (at least a year and a month: accountants need the year), oldest "
        "first. Each product's newest row stays, and what went is added up per product in "
        "stock_ledger_pruned, so the ledger still adds up to the stock.",
    )
    finished_orders_days: float = Field(
        default=400.0, ge=366, le=36_500,
        description="Orders collected, cancelled, expired or rejected longer ago than this "
        "are deleted with their lines, history and reservations, once the shop has their last "
        "status. Orders still open are never deleted.",
    )
    check_every_s: float = Field(
        default=3600.0, ge=60, le=86400, description="How often old rows are looked for."
    )
