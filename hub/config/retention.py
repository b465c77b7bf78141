"""How long the hub keeps records it no longer needs, personal data first."""

from __future__ import annotations

from pydantic import Field

from hub.config.base import StrictModel


class RetentionConfig(StrictModel):
    """Ages after which rows are deleted. The stock ledger, orders and the outbox are business
    records and are never pruned here."""

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
    check_every_s: float = Field(
        default=3600.0, ge=60, le=86400, description="How often old rows are looked for."
    )
