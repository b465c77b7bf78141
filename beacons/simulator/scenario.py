"""What to simulate: the crowd (scenario options a person sets) and the physics of one store (drawn
from the seed, so defaults are judged on many stores rather than tuned to one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class Scenario(BaseModel):
    """Options of one simulated store run. Every random draw comes from ``seed``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=0, description="Seed of every random draw of the run.")
    duration_s: float = Field(
        default=3600.0, gt=60, le=7 * 86400, description="Length of the trace in seconds."
    )
    start: float = Field(
        default=1_767_261_600.0,
        description="Unix time of the first second (a random offset below one token window is "
        "added when vary is on, so window turns fall anywhere in a visit).",
    )
    layout: Literal["single", "zones"] = Field(
        default="single",
        description="'single': one scanner named door just inside the entrance (the default "
        "hub config); 'zones': entrance, aisles and pickup zones with a scanner each.",
    )
    visits_per_hour: float = Field(
        default=30.0, ge=0, description="Members walking in per hour (each visit is ground truth)."
    )
    passers_per_hour: float = Field(
        default=150.0, ge=0, description="Members walking past on the pavement per hour."
    )
    window_shopper_share: float = Field(
        default=0.25, ge=0, le=1,
        description="Share of passers-by who stop just outside the door or window for a while.",
    )
    non_members_per_hour: float = Field(
        default=150.0, ge=0,
        description="Phones of non-members and other Bluetooth devices passing or visiting.",
    )
    background_share: float = Field(
        default=0.3, ge=0, le=1,
        description="Share of visiting members whose phone stops advertising for a while "
        "during the visit (app in the background).",
    )
    quiet_at_entry_share: float = Field(
        default=0.0, ge=0, le=1,
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
    """Radio propagation and reception of one store."""

    path_loss_exponent: float
    shadow_sigma_db: float
    shadow_corr_m: float
    wall_loss_db: float
    rician_k_db: float
    rx_probability: float
    sensitivity_dbm: float
    phone_power_sd_db: float
    scanner_gain_sd_db: float

    @classmethod
    def draw(cls, rng: np.random.Generator, *, vary: bool) -> Physics:
        """A store's physics: typical shop-floor values, spread over the published ranges when
        ``vary`` (log-distance exponent 1.8-2.8, shadowing 2.5-6 dB, glass to brick fronts)."""
        if not vary:
            return cls(2.2, 4.0, 2.5, 8.0, 6.0, 0.85, -96.0, 3.0, 2.0)
        return cls(
            path_loss_exponent=float(rng.uniform(1.8, 2.8)),
            shadow_sigma_db=float(rng.uniform(2.5, 6.0)),
            shadow_corr_m=float(rng.uniform(1.5, 4.0)),
            wall_loss_db=float(rng.uniform(3.0, 15.0)),
            rician_k_db=float(rng.uniform(3.0, 9.0)),
            rx_probability=float(rng.uniform(0.65, 0.95)),
            sensitivity_dbm=float(rng.uniform(-99.0, -93.0)),
            phone_power_sd_db=float(rng.uniform(2.0, 4.5)),
            scanner_gain_sd_db=float(rng.uniform(0.0, 3.0)),
        )
