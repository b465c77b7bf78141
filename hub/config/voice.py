"""Settings for the voice feature."""

from __future__ import annotations

from pydantic import Field

from hub.config.base import StrictModel


class VoiceConfig(StrictModel):
    """Settings of the voice feature."""

    enabled: bool = Field(default=True, description="Run the voice feature.")
