"""Settings for the vision feature."""

from __future__ import annotations

from pydantic import Field

from hub.config.base import StrictModel


class VisionConfig(StrictModel):
    """Settings of the vision feature."""

    enabled: bool = Field(default=True, description="Run the vision feature.")
