"""Members of the shop's loyalty programme known to this store, with their reminder consent.

A member's beacon key (issued by the shop when the member opts in) is what lets the hub recognise
their phone's rotating token. The key is kept only while consent is given: withdrawing consent
deletes it, and it never leaves this module in listings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.clock import Clock
from hub.db import Database
from hub.errors import NotFound
from hub.events import Event, EventBus
from hub.outbox import enqueue
from sync.messages import ID_PATTERN, MEMBER_STATUS, NAME_PATTERN

MEMBERS_CHANGED = "members.changed"


class MemberIn(BaseModel):
    """A member as the shop sends it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN, description="The shop's member id.")
    display_name: str = Field(default="", max_length=100, pattern=NAME_PATTERN,
                              description="Name staff see: no control characters or line breaks.")
    consent: bool = Field(description="Opted in to arrival reminders.")
    beacon_key: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{32}$",
        description="128-bit beacon key as 32 hex characters; required with consent.",
    )

    @model_validator(mode="after")
    def _key_needs_consent(self) -> MemberIn:
        if self.consent and self.beacon_key is None:
            raise ValueError("a member who consents needs a beacon_key")
        if not self.consent and self.beacon_key is not None:
            raise ValueError("a beacon_key is kept only for members who consent")
        return self


@dataclass(frozen=True)
class Member:
    """A member as staff see it: no key."""

    id: str
    display_name: str
    consent: bool
    has_key: bool
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


class MemberDirectory:
    """The store's members and the keys of those who opted in."""

    def __init__(self, db: Database, clock: Clock, bus: EventBus | None = None) -> None:
        self.db = db
        self.clock = clock
        self.bus = bus

    def upsert(self, member: MemberIn) -> Member:
        now = self.clock.now()
        key = member.beacon_key.lower() if member.beacon_key else None
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO members "
                "(id, display_name, consent, consent_at, beacon_key, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "display_name = excluded.display_name, consent = excluded.consent, "
                "consent_at = CASE WHEN excluded.consent = 1 AND members.consent = 0 "
                "THEN excluded.consent_at ELSE members.consent_at END, "
                "beacon_key = excluded.beacon_key, updated_at = excluded.updated_at",
                (member.id, member.display_name, int(member.consent),
                 now if member.consent else None, key, now),
            )
            self._changed(tx)
        return self.get(member.id)

    def get(self, member_id: str) -> Member:
        row = self.db.query_one(
            "SELECT id, display_name, consent, beacon_key IS NOT NULL AS has_key, updated_at "
            "FROM members WHERE id = ?",
            (member_id,),
        )
        if row is None:
            raise NotFound(f"no member with id {member_id!r}")
        return _member(row)

    def list(self, limit: int = 500) -> list[Member]:
        rows = self.db.query(
            "SELECT id, display_name, consent, beacon_key IS NOT NULL AS has_key, updated_at "
            "FROM members ORDER BY id LIMIT ?",
            (limit,),
        )
        return [_member(r) for r in rows]

    def keys(self) -> dict[str, bytes]:
        """Beacon keys of members who opted in, for the token resolver."""
        rows = self.db.query(
            "SELECT id, beacon_key FROM members WHERE consent = 1 AND beacon_key IS NOT NULL"
        )
        return {r["id"]: bytes.fromhex(r["beacon_key"]) for r in rows}

    def announce(self) -> int:
        """Tell the shop every member as this store has it (a member.status event each), when
        it asks: a shop restored from its backup lost the opt-ins and withdrawals made since,
        and could not take an opt-out from a member it had lost while this store kept
        reminding them. Returns how many."""
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT id, display_name, consent, beacon_key, updated_at "
                              "FROM members ORDER BY id").fetchall()
            now = self.clock.now()
            for member_id, name, consent, key, updated_at in rows:
                enqueue(tx, self.bus, MEMBER_STATUS, {
                    "id": member_id, "display_name": name, "consent": bool(consent),
                    "beacon_key": key if consent else None, "updated_at": updated_at}, now)
        return len(rows)

    def _changed(self, tx: Any) -> None:
        if self.bus is not None:
            bus = self.bus
            tx.after_commit(lambda: bus.publish(Event(MEMBERS_CHANGED, {})))


def _member(row: dict[str, Any]) -> Member:
    return Member(row["id"], row["display_name"], bool(row["consent"]), bool(row["has_key"]),
                  row["updated_at"])
