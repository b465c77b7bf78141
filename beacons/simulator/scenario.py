"""What to simulate: the crowd (scenario options a person sets) and the physics of one store (drawn
from the seed, so defaults are judged on many stores rather than tuned to one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

#: Arrivals of one kind per hour a run may ask for: one a second, far beyond a busy store, and
#: a bound on the trace's size (an hour of that is about a million advertisements).
MAX_PER_HOUR = 3600.0


class Scenario(BaseModel):
    """Options of one simulated store run. Every random draw comes from ``seed``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    seed: int = Field(default=0, ge=0, description="Seed of every random draw of the run.")
    duration_s: float = Field(
        default=3600.0, gt=60, le=7 * 86400, description="Length of the trace in seconds."
    )
    start: float = Field(
        default=1_767_261_600.0,
        description="Unix time of the first second (a random offset below one token window is "
        "added when vary is on, so window turns fall anywhere in a visit).",
    )
    layout: Literal["single", "pair", "zones"] = Field(
        default="single",
        description="'single': one scanner named door just inside the entrance (the default "
        "hub config); 'pair': the same plus an interior scanner named inner 7-10 m in, "
        "reporting the same zone; 'zones': entrance, aisles and pickup zones with a scanner each.",
    )
    visits_per_hour: float = Field(
        default=30.0,
        ge=0,
        le=MAX_PER_HOUR,
        description="Members walking in per hour (each visit is ground truth).",
    )
    passers_per_hour: float = Field(
        default=150.0,
        ge=0,
        le=MAX_PER_HOUR,
        description="Members walking past on the pavement per hour.",
    )
    window_shopper_share: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Share of passers-by who stop just outside the door or window for a while.",
    )
    non_members_per_hour: float = Field(
        default=150.0,
        ge=0,
        le=MAX_PER_HOUR,
        description="Phones of non-members and other Bluetooth devices passing or visiting.",
    )
    background_share: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Share of visiting members whose phone stops advertising for a while "
        "during the visit (app in the background).",
    )
    quiet_at_entry_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of visiting members whose phone is already quiet when they walk in.",
    )
    revisit_share: float = Field(
        default=0.1, ge=0, le=1, description="Share of visitors who come back later in the run."
    )
    store_beacons: int = Field(
        default=3, ge=0, le=50, description="Store beacons (iBeacon and Eddystone UID+TLM)."
    )
    vary: bool = Field(
        default=True,
        description="Draw the store's physics (walls, path loss, shadowing, scanner mounting, "
        "reception) from the seed; off gives one fixed reference store.",
    )


@dataclass(frozen=True, slots=True)
class Physics:
    """Radio propagation and reception of one store. beacons/README.md ("Simulator physics") gives
    the published range behind every draw."""

    path_loss_near: float  # log-distance exponent up to breakpoint_m (line of sight)
    breakpoint_m: float
    path_loss_far: float  # beyond it (shelving, fixtures, other shoppers)
    shadow_sigma_db: float
    shadow_corr_m: float
    wall_loss_db: float  # the shop front away from the open door
    rician_k_db: float
    rx_probability: float
    sensitivity_dbm: float
    reference_dbm: float  # the store's typical phone at 1 m, as its adapters read it
    phone_power_sd_db: float
    scanner_gain_sd_db: float  # between the scanners of one store

    @classmethod
    def draw(cls, rng: np.random.Generator, *, vary: bool) -> Physics:
        """A store's physics: typical shop-floor values, spread over the published ranges when
        ``vary``. Fronts are glass (2-6 dB) or solid/coated (10-20 dB) with equal odds, so both
        kinds of store are always in a bench run."""
        if not vary:
            return cls(
                path_loss_near=2.0,
                breakpoint_m=4.0,
                path_loss_far=2.7,
                shadow_sigma_db=5.0,
                shadow_corr_m=2.5,
                wall_loss_db=4.0,
                rician_k_db=6.0,
                rx_probability=0.85,
                sensitivity_dbm=-96.0,
                reference_dbm=-59.0,
                phone_power_sd_db=3.0,
                scanner_gain_sd_db=1.0,
            )
        glass = rng.random() < 0.5
        return cls(
            path_loss_near=float(rng.uniform(1.8, 2.2)),
            breakpoint_m=float(rng.uniform(3.0, 6.0)),
            path_loss_far=float(rng.uniform(2.2, 3.2)),
            shadow_sigma_db=float(rng.uniform(4.0, 8.0)),
            shadow_corr_m=float(rng.uniform(1.5, 4.0)),
            wall_loss_db=float(rng.uniform(2.0, 6.0) if glass else rng.uniform(10.0, 20.0)),
            rician_k_db=float(rng.uniform(3.0, 9.0)),
            rx_probability=float(rng.uniform(0.65, 0.95)),
            sensitivity_dbm=float(rng.uniform(-99.0, -93.0)),
            reference_dbm=float(rng.uniform(-63.0, -55.0)),
            phone_power_sd_db=float(rng.uniform(2.0, 4.0)),
            scanner_gain_sd_db=float(rng.uniform(0.0, 2.0)),
        )

    def path_loss_db(self, distance_m: np.ndarray) -> np.ndarray:
        """Dual-slope log-distance loss relative to 1 m: ``10 n log10(d)`` with the near exponent
        up to the breakpoint and the far one beyond it."""
        near = np.minimum(distance_m, self.breakpoint_m)
        far = np.maximum(distance_m / self.breakpoint_m, 1.0)
        return 10 * self.path_loss_near * np.log10(near) + 10 * self.path_loss_far * np.log10(far)
