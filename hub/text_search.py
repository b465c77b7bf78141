"""Typed kiosk search: the catalogue's names and aliases indexed by ``voice``'s matcher, rebuilt
whenever the catalogue changes. Voice search matches transcripts with the same matcher, so a
product found by typing is found by asking."""

from __future__ import annotations

import threading

from hub.catalog import Catalog, ImportReport
from voice.matcher import CatalogEntry, Match, ProductMatcher


class TextSearch:
    """Lazily built matcher over the current catalogue."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._matcher: ProductMatcher | None = None
        self._lock = threading.Lock()
        catalog.add_listener(self._invalidate)

    def _invalidate(self, _report: ImportReport) -> None:
        with self._lock:
            self._matcher = None

    def matcher(self) -> ProductMatcher:
        with self._lock:
            if self._matcher is None:
                self._matcher = ProductMatcher(
                    CatalogEntry(p.sku, p.names, p.aliases) for p in self.catalog.all()
                )
            return self._matcher

    def search(self, text: str, limit: int = 5, lang: str | None = None) -> list[Match]:
        return self.matcher().search(text, limit=limit, lang=lang)
