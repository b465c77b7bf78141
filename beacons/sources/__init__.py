"""Where advertisements come from. Every source has the same shape: ``await source.run(sink)``
calls ``sink(advertisement)`` for each advertisement until it is cancelled (or its input ends), so
the hub cannot tell the BlueZ adapter, a relay node, a replayed trace and the simulator apart."""

from beacons.sources.base import AdvertisementSink, AdvertisementSource, DetectionCallback

__all__ = ["AdvertisementSink", "AdvertisementSource", "DetectionCallback"]
