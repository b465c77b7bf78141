"""Settings for the beacons feature."""

from __future__ import annotations

from pydantic import Field

from hub.config.base import StrictModel


class BeaconsConfig(StrictModel):
    """Settings of the beacons feature."""

    enabled: bool = Field(default=True, description="Run the beacons feature.")
