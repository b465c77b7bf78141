"""Presence settings: scanners with their calibration, and the engine's timing.

Strict pydantic models (unknown keys are errors) so ``hub`` can embed them in its config file and a
typo in ``hub.toml`` fails loudly. Every threshold is in calibrated dBm: a scanner's readings are
first shifted by its ``rssi_offset_db`` so one set of thresholds fits adapters of different gain.
The defaults assume phones that read about -59 dBm at 1 m (the iBeacon convention) and are
explained in beacons/README.md."""

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
    role: Literal["entrance", "interior", "doorway"] = Field(
        default="entrance",
        description="'entrance': near the door, where people outside are heard about as strongly "
        "as people inside, so arrival needs the walk-in pattern; 'interior': deep enough in the "
        "shop that anyone heard at enter_dbm or more (and lead_db over the door scanners) is "
        "inside; 'doorway': a door scanner in a store with interior scanners: it keeps members "
        "present and is the reference lead_db is measured against, but decides no arrival.",
    )
    rssi_offset_db: float = Field(
        default=0.0,
        ge=-30,
        le=30,
        description="Added to every reading of this scanner before any threshold: calibrates an "
        "adapter that reads stronger or weaker than the reference (a phone at 1 m reads -59).",
    )
    enter_dbm: float = Field(
        default=-55.0,
        le=-20,
        description="Interior scanners: the median level that means 'inside, near this "
        "scanner' (with lead_db, when set). Entrance scanners decide no arrival on level alone, "
        "however strong: people pass right by a door scanner on the pavement too.",
    )
    pass_dbm: float = Field(
        default=-66.0,
        le=-20,
        description="Entrance scanners: the peak a walk-in reaches passing the scanner (about "
        "1.5 m). People on the pavement pass further away and mostly peak below it.",
    )
    inside_dbm: float = Field(
        default=-94.0,
        le=-20,
        description="Entrance scanners: after the peak the member must still be heard at least "
        "this strongly for hold_s. The default, near sensitivity, asks only to be heard: a "
        "walk-in deep in a shop can read -85 to -94 dBm, and confirm_s tells them from someone "
        "walking on along the front better than a level here did.",
    )
    lead_db: float | None = Field(
        default=None,
        ge=-30,
        le=30,
        description="Interior scanners: also require the level to beat the member's strongest "
        "entrance-scanner level by this much (someone outside is nearer the entrance scanner). "
        "None: level alone.",
    )
    exit_dbm: float = Field(
        default=-100.0,
        le=-20,
        description="Median levels below this count as silence for 'left' and zones (hysteresis "
        "against enter_dbm); -100 keeps every reading.",
    )

    @property
    def zone_name(self) -> str:
        """The zone this scanner reports."""
        return self.zone or self.name

    @model_validator(mode="after")
    def _ordered(self) -> ScannerSettings:
        """Only the thresholds the scanner's role uses are ordered: an interior scanner decides
        on enter_dbm alone, an entrance or doorway one never does."""
        if self.role == "interior":
            names, values = ("exit_dbm", "enter_dbm"), (self.exit_dbm, self.enter_dbm)
        else:
            names = ("exit_dbm", "inside_dbm", "pass_dbm")
            values = (self.exit_dbm, self.inside_dbm, self.pass_dbm)
        if list(values) != sorted(values):
            raise ValueError(
                f"scanner {self.name!r} ({self.role}): thresholds must satisfy "
                f"{' <= '.join(names)} (got {', '.join(f'{v:g}' for v in values)})"
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
        default=3.0, gt=0, le=30, description="Length of the RSSI filter window in seconds."
    )
    min_sightings: int = Field(
        default=2,
        ge=1,
        le=50,
        description="Readings needed in the window before its level counts for anything.",
    )
    near_peak_db: float = Field(
        default=4.0,
        gt=0,
        le=20,
        description="Levels within this many dB of the approach's peak count as 'at the peak'.",
    )
    dwell_max_s: float = Field(
        default=8.0,
        gt=0,
        le=120,
        description="Entrance scanners: longest stay at the peak that still counts as walking past "
        "the scanner (people walk about 1.3 m/s). Longer is someone standing there: a "
        "window-shopper in the doorway, until they move on inside.",
    )
    drop_db: float = Field(
        default=12.0,
        gt=0,
        le=40,
        description="Entrance scanners: how far the median must fall below the peak to show the "
        "member walked past the scanner rather than stopped at it. Larger than the level's own "
        "fading swings, which fake small drops at a standstill.",
    )
    drop_within_s: float = Field(
        default=8.0,
        gt=0,
        le=60,
        description="Entrance scanners: the fall must come within this long of leaving the peak.",
    )
    hold_s: float = Field(
        default=2.0,
        ge=0,
        le=30,
        description="Entrance scanners: after that fall the median must stay at inside_dbm or "
        "more for this long (someone walking past outside drops on behind the front wall).",
    )
    hold_gap_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Entrance scanners: a silence longer than this during hold_s ends the "
        "walk-in (gone out of range along the pavement).",
    )
    interior_hold_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="Interior scanners: how long the level must hold at enter_dbm (and the "
        "lead) before it is an arrival; 0: at once.",
    )
    confirm_s: float = Field(
        default=30.0,
        ge=0,
        le=300,
        description="Entrance scanners: a walk-in is announced only when the member is heard "
        "again this long after it, at any scanner (inside, they stay in range; someone who "
        "walked past along the front is out of range by then). Forgotten after a silence of "
        "stay_gap_s. 0: announced at once.",
    )
    settle_s: float = Field(
        default=30.0,
        ge=0,
        le=900,
        description="Entrance scanners: a member who left their peak without the walk-in "
        "pattern (lingered at the door first) arrives once still heard this long afterwards "
        "while moving about. 0 turns this off.",
    )
    settle_range_db: float = Field(
        default=8.0,
        ge=0,
        le=60,
        description="'Moving about' for settle_s: the 10th-90th percentile range of the level "
        "over that time. Someone standing outside a window stays within a few dB.",
    )
    stay_s: float = Field(
        default=200.0,
        ge=0,
        le=3600,
        description="Backstop: a member heard for this long without a gap of stay_gap_s is "
        "inside whatever the pattern (a phone that was silent at the door). 0 turns it off.",
    )
    stay_gap_s: float = Field(
        default=120.0,
        gt=0,
        le=600,
        description="Longest silence that does not break the stay_s backstop.",
    )
    encounter_gap_s: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="Silence at a scanner after which a new approach starts from scratch.",
    )
    left_after_s: float = Field(
        default=180.0,
        gt=0,
        le=3600,
        description="Silence at every scanner after which a present member has left. Long, "
        "because phones go quiet in the background and far corners of a shop are out of range.",
    )
    exit_after_s: float = Field(
        default=45.0,
        gt=0,
        le=3600,
        description="Shorter silence that is enough once the member was last heard walking out "
        "past an entrance scanner (a pass, then fading away within a few seconds).",
    )
    zone_margin_db: float = Field(
        default=3.0,
        ge=0,
        le=30,
        description="A new zone must be this much stronger than the current one to take over.",
    )
    zone_hold_s: float = Field(
        default=2.0,
        ge=0,
        le=120,
        description="...and stay stronger for this long, so a member between zones does not flap.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> PresenceSettings:
        names = [s.name for s in self.scanners]
        if len(names) != len(set(names)):
            raise ValueError(f"scanner names must be unique, got {names}")
        return self
