"""End-to-end fixtures: the real broker fixture shared with the sync tests."""

from tests.fixtures.mosquitto import mosquitto  # noqa: F401
