"""Settings for Bluetooth LE: where advertisements come from, the presence engine (scanners and
their calibration, embedded from ``beacons``), arrival reminders and fleet health."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from beacons.settings import PresenceSettings
from beacons.sources.reorder import HOLD_S
from hub.config.base import StrictModel
from sync.broker_config import read_password_file


class RemindersConfig(StrictModel):
    """When an arrival may turn into a reminder."""

    enabled: bool = Field(default=True, description="Evaluate reminder rules on arrivals.")
    pickup_point: str = Field(
        default="the pickup counter",
        min_length=1,
        max_length=100,
        description="Where members collect their orders, as the reminder names it to them "
        "('your order is ready at ...').",
    )
    quiet_start: time | None = Field(
        default=time(21, 0),
        description="Local store time from which members get no reminder messages (staff "
        "alerts still show). None: no quiet hours.",
    )
    quiet_end: time | None = Field(
        default=time(8, 0), description="Local store time when quiet hours end."
    )
    member_min_gap_s: float = Field(
        default=1800.0,
        ge=0,
        le=86400,
        description="At most one arrival's reminders per member within this many seconds, so a "
        "member who steps out and back in is not messaged twice. One arrival gets a message "
        "for each of the member's ready orders.",
    )
    member_max_per_day: int = Field(
        default=3,
        ge=1,
        le=100,
        description="At most this many arrivals' reminders per member in any 24 hours.",
    )
    staff_repeat_after_s: float = Field(
        default=600.0,
        ge=0,
        le=86400,
        description="The staff are alerted about an order again only this many seconds after "
        "the last alert about it, so a member whose arrival flickers (heard leaving and "
        "arriving again at the door) does not alert the counter twice. 0: every arrival.",
    )
    store_max_per_minute: int = Field(
        default=30,
        ge=1,
        le=10000,
        description="Store-wide cap on reminder messages per minute (a runaway guard).",
    )

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _local_time(cls, value: time | None) -> time | None:
        """Quiet hours are the store's local time (``store.timezone``, daylight saving
        included); "21:00+01:00" would be compared with that local time and fail on every
        arrival, so an offset is refused here."""
        if value is not None and value.tzinfo is not None:
            raise ValueError(f"write {value.replace(tzinfo=None).isoformat('minutes')} without "
                             "an offset: quiet hours are local store time in store.timezone")
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> RemindersConfig:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("set both quiet_start and quiet_end, or neither")
        return self


class HealthConfig(StrictModel):
    """Alerts about the store's own beacons."""

    missing_after_s: float = Field(
        default=900.0,
        ge=30,
        le=7 * 86400,
        description="A declared beacon not heard for this long is reported missing.",
    )
    battery_low_mv: int = Field(
        default=2500,
        ge=0,
        le=10000,
        description="Eddystone-TLM battery below this (mV) is reported low; 0 turns it off.",
    )
    check_every_s: float = Field(
        default=60.0, ge=1, le=3600, description="How often fleet health is evaluated."
    )


class BeaconsConfig(StrictModel):
    """Bluetooth LE arrivals, reminders and the beacon fleet."""

    enabled: bool = Field(
        default=False,
        description="Run presence detection. Off by default: turn it on once a Bluetooth "
        "adapter (or relay nodes) is in place and chain_prefix is set.",
    )
    source: Literal["bleak", "mqtt", "replay", "simulate"] = Field(
        default="bleak",
        description="'bleak': the hub's own adapter through BlueZ; 'mqtt': scanner relay nodes "
        "on the local broker; 'replay': a trace file; 'simulate': a simulated store (demos).",
    )
    chain_prefix: str | None = Field(
        default=None,
        description="The chain's 8-byte token prefix (16 hex digits), issued by the shop.",
    )
    scanner_name: str = Field(
        default="door",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Name the hub's own adapter reports as (one of presence.scanners).",
    )
    adapter: str | None = Field(
        default=None,
        pattern=r"^hci[0-9]+$",
        description="BlueZ adapter (e.g. 'hci1'); None: the default adapter.",
    )
    scanning_mode: Literal["active", "passive"] = Field(
        default="active",
        description="'passive' sends no scan requests but needs BlueZ >= 5.56 with "
        "--experimental and kernel >= 5.10.",
    )
    watchdog_s: float = Field(
        default=60.0,
        ge=5,
        le=3600,
        description="Restart the BlueZ scan after this long without any advertisement.",
    )
    relay_host: str = Field(default="127.0.0.1", description="Local broker of relay nodes.")
    relay_port: int = Field(
        default=1883, ge=1, le=65535, description="Its TCP port (8883 for TLS by convention)."
    )
    relay_username: str | None = Field(
        default=None,
        min_length=1,
        description="User name the hub logs in to the relay nodes' broker with; None: "
        "anonymous (only for a broker that accepts anonymous clients).",
    )
    relay_password_file: Path | None = Field(
        default=None,
        description="File holding that user's password (first line), read at start so the "
        "password is in neither the config file nor the logs. Relative to the config file.",
    )
    relay_tls_ca_file: Path | None = Field(
        default=None,
        description="CA certificate that signed the relay broker's certificate; setting it "
        "turns TLS on, with the certificate and host name verified. Relative to the config "
        "file.",
    )
    relay_reorder_s: float = Field(
        default=HOLD_S,
        ge=0,
        le=10,
        description="Hold relayed advertisements this many seconds past their time and apply "
        "them in time order: nodes' batches interleave on the broker and presence decides on "
        "the order, so this makes the hub decide what a replay of the merged, time-sorted "
        "recording decides. Every relayed sighting is applied about this much later; a line "
        "later than that is applied at once and logged. 0: as they arrive.",
    )
    replay_file: Path | None = Field(
        default=None, description="source = 'replay': the trace to play (relative to the config)."
    )
    replay_realtime: bool = Field(
        default=False, description="source = 'replay': keep the trace's pace instead of flat out."
    )
    simulate_seed: int = Field(default=0, description="source = 'simulate': the store's seed.")
    fleet_file: Path | None = Field(
        default=None,
        description="Fleet declaration (firmware_configs/*.yaml) whose beacons health tracks; "
        "with source = 'mqtt' only its esp32-relay scanners are heard (any node when it "
        "declares none).",
    )
    presence: PresenceSettings = Field(
        default_factory=PresenceSettings,
        description="Scanners, their calibration and the presence engine's timing.",
    )
    reminders: RemindersConfig = Field(
        default_factory=RemindersConfig, description="Arrival reminder rules."
    )
    health: HealthConfig = Field(default_factory=HealthConfig, description="Fleet health alerts.")

    def relay_password(self) -> str | None:
        """The relay broker password, read from ``relay_password_file`` now (OSError or
        UnicodeDecodeError when it cannot be read; ``check_files`` reports those first)."""
        if self.relay_password_file is None:
            return None
        return read_password_file(self.relay_password_file)

    @field_validator("chain_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{16}", value):
            raise ValueError("chain_prefix must be 16 hex digits")
        return value.lower() if value else value

    @model_validator(mode="after")
    def _complete(self) -> BeaconsConfig:
        if self.relay_password_file is not None and self.relay_username is None:
            raise ValueError(
                "relay_password_file needs relay_username: the broker checks a "
                "password against a user name"
            )
        if not self.enabled:
            return self
        if self.chain_prefix is None and self.source != "simulate":
            raise ValueError("set chain_prefix (16 hex digits from the shop) to enable beacons")
        if self.source == "replay" and self.replay_file is None:
            raise ValueError("source = 'replay' needs replay_file")
        names = {s.name for s in self.presence.scanners}
        if self.source == "bleak" and self.scanner_name not in names:
            raise ValueError(
                f"scanner_name {self.scanner_name!r} is not among presence.scanners "
                f"({', '.join(sorted(names))})"
            )
        return self
