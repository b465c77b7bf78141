"""The strict base of every configuration model: unknown keys are errors, not surprises."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A configuration section: unknown keys are rejected and values are checked on assignment.
    Types are not strict here but where a file is read (``hub.config``'s loader validates in
    pydantic's strict JSON mode, which also covers the sections embedded from ``beacons`` and
    ``sync``): code may still give a path or a time as text."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
