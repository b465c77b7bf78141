"""Stock at the chain's other stores nearby, so a kiosk can say "out of stock here, available at
Market Södermalm" instead of only "no". Filled by sync from those stores' retained snapshots;
kept in memory (it is refilled on every connection) and never written to the ledger."""

from __future__ import annotations

from sync.ports import StockLevel


class NearbyStock:
    """The latest stock level per SKU of each configured nearby store."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = dict(names)
        self._levels: dict[str, dict[str, StockLevel]] = {}

    def update(self, store: str, level: StockLevel) -> None:
        """Record a snapshot of ``store`` (ignored for stores not configured as nearby)."""
        if store in self.names:
            self._levels.setdefault(level.sku, {})[store] = level

    def elsewhere(self, sku: str) -> list[dict[str, object]]:
        """Nearby stores that have ``sku`` available, most first. Called from reader threads
        while sync updates on the event loop: the levels are copied in one step first."""
        levels = tuple(self._levels.get(sku, {}).items())
        found = [(level.available, store) for store, level in levels
                 if level.available > 0 and store in self.names]
        return [{"store": store, "name": self.names[store], "available": available}
                for available, store in sorted(found, key=lambda item: (-item[0], item[1]))]
