"""Fixtures of the beacons tests: the shared mosquitto broker fixture and a clock tests move."""

from __future__ import annotations

from tests.fixtures.mosquitto import mosquitto  # noqa: F401 - the fixture
