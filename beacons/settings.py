"""Presence settings: scanners with their calibration, and the engine's timing.

Strict pydantic models (unknown keys are errors) so ``hub`` can embed them in its config file and a
typo in ``hub.toml`` fails loudly. Every threshold is in calibrated dBm: a scanner's readings are
first shifted by its ``rssi_offset_db`` so one set of thresholds fits adapters of different gain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ScannerSettings(_Strict):
    """One scanner (the hub's own adapter or a relay node) and how to read its RSSI."""

    name: str = Field(pattern=NAME_PATTERN, description="Scanner name as it appears in traces.")
    zone: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Zone this scanner reports; defaults to the scanner's name.",
    )
    role: Literal["entrance", "interior"] = Field(
        default="entrance",
        description="'entrance': near the door, where people outside can also be heard strongly, "
        "so arrival needs the walk-in pattern; 'interior': deep enough that anyone heard above "
        "enter_dbm is inside.",
    )
    rssi_offset_db: float = Field(
        default=0.0,
        ge=-30,
        le=30,
        description="Added to every reading of this scanner before any threshold: calibrates an "
        "adapter that reads stronger or weaker than the reference (measure a phone at 1 m).",
    )
    enter_dbm: float = Field(
        default=-56.0,
        le=-20,
        description="Filtered level that means 'close to this scanner': an arrival on its own for "
        "an interior scanner; at an entrance only before the member has lingered at that level.",
    )
    pass_dbm: float = Field(
        default=-68.0,
        le=-20,
        description="Entrance scanners: the peak level a walk-in must reach as the member passes "
        "the scanner (weaker peaks are people passing on the pavement).",
    )
    inside_dbm: float = Field(
        default=-88.0,
        le=-20,
        description="Entrance scanners: after the peak the member must still be heard at least "
        "this strongly (inside, in line of sight) when the level has dropped.",
    )
    exit_dbm: float = Field(
        default=-100.0,
        le=-20,
        description="Readings filtered below this level count as silence for 'left' (hysteresis "
        "against enter_dbm); -100 keeps every reading.",
    )

    @property
    def zone_name(self) -> str:
        """The zone this scanner reports."""
        return self.zone or self.name

    @model_validator(mode="after")
    def _ordered(self) -> ScannerSettings:
        if not self.exit_dbm <= self.inside_dbm <= self.pass_dbm <= self.enter_dbm:
            raise ValueError(
                f"scanner {self.name!r}: thresholds must satisfy exit_dbm <= inside_dbm <= "
                f"pass_dbm <= enter_dbm (got {self.exit_dbm}, {self.inside_dbm}, "
                f"{self.pass_dbm}, {self.enter_dbm})"
            )
        return self


class PresenceSettings(_Strict):
    """How the presence engine turns filtered RSSI into arrived / zone / left."""

    scanners: list[ScannerSettings] = Field(
        default_factory=lambda: [ScannerSettings(name="door")],
        min_length=1,
        description="Scanners heard by the hub. The default is one scanner named 'door' just "
        "inside the entrance.",
    )
    window_s: float = Field(
        default=3.0, gt=0, le=30, description="Length of the RSSI median window in seconds."
    )
    min_sightings: int = Field(
        default=2, ge=1, le=50,
        description="Readings needed in the window before its level is trusted for an arrival.",
    )
    dwell_max_s: float = Field(
        default=8.0, gt=0, le=120,
        description="Entrance scanners: longest time a member may stay near their peak level and "
        "still count as walking past the scanner into the shop. Someone standing at that level "
        "longer is a window-shopper outside the door until they move on inside.",
    )
    drop_db: float = Field(
        default=6.0, gt=0, le=40,
        description="Entrance scanners: how far the level must fall from the peak to show the "
        "member walked past the scanner rather than stopping at it.",
    )
    drop_within_s: float = Field(
        default=8.0, gt=0, le=60,
        description="Entrance scanners: the fall must come within this many seconds of leaving "
        "the peak.",
    )
    near_peak_db: float = Field(
        default=4.0, gt=0, le=20,
        description="Levels within this many dB of the peak count as 'at the peak' for dwell.",
    )
    encounter_gap_s: float = Field(
        default=15.0, gt=0, le=600,
        description="Silence at a scanner after which a new approach starts from scratch.",
    )
    left_after_s: float = Field(
        default=180.0, gt=0, le=3600,
        description="Silence at every scanner after which a present member has left. Long, "
        "because phones go quiet in the background and deep corners of a shop are out of range.",
    )
    exit_after_s: float = Field(
        default=45.0, gt=0, le=3600,
        description="Shorter silence that is enough once the member was last heard walking out "
        "past an entrance scanner (peak, then fading away).",
    )
    zone_margin_db: float = Field(
        default=4.0, ge=0, le=30,
        description="A new zone must be this much stronger than the current one to take over.",
    )
    zone_hold_s: float = Field(
        default=4.0, ge=0, le=120,
        description="...and stay stronger for this long, so a member between zones does not flap.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> PresenceSettings:
        names = [s.name for s in self.scanners]
        if len(names) != len(set(names)):
            raise ValueError(f"scanner names must be unique, got {names}")
        return self
