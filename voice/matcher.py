"""Text to products: fuzzy matching of a typed query or a transcript against product names and
aliases in every language of the catalogue. Kiosk text search and voice search share it, so a
product found by typing is found by asking."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process


@dataclass(frozen=True)
class CatalogEntry:
    """What the matcher needs to know of one product."""

    sku: str
    names: dict[str, str]
    aliases: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """One product found for a query; ``score`` is 0..1 and ``matched`` the name that matched."""

    sku: str
    score: float
    matched: str


def normalise(text: str) -> str:
    """Case-folded, accent-free, single-spaced text, so 'Crème' matches 'creme'."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    cleaned = "".join(ch if ch.isalnum() else " " for ch in stripped.casefold())
    return " ".join(cleaned.split())


class ProductMatcher:
    """An index of every name and alias of every product, searched with rapidfuzz."""

    def __init__(self, entries: Iterable[CatalogEntry]) -> None:
        self._choices: list[str] = []
        self._owners: list[tuple[str, str, str]] = []  # (sku, lang, original text)
        for entry in entries:
            for lang, name in entry.names.items():
                self._add(entry.sku, lang, name)
            for lang, aliases in entry.aliases.items():
                for alias in aliases:
                    self._add(entry.sku, lang, alias)

    def _add(self, sku: str, lang: str, text: str) -> None:
        key = normalise(text)
        if key:
            self._choices.append(key)
            self._owners.append((sku, lang, text))

    def search(self, text: str, limit: int = 5, lang: str | None = None) -> list[Match]:
        """Products best matching ``text``, best first, one entry per product."""
        query = normalise(text)
        if not query or not self._choices:
            return []
        hits = process.extract(
            query, self._choices, scorer=fuzz.WRatio, limit=max(limit * 8, 20), score_cutoff=50
        )
        best: dict[str, Match] = {}
        for _, score, index in hits:
            sku, name_lang, original = self._owners[index]
            if lang is not None and name_lang != lang:
                score *= 0.98
            match = Match(sku=sku, score=round(score / 100.0, 4), matched=original)
            if sku not in best or match.score > best[sku].score:
                best[sku] = match
        return sorted(best.values(), key=lambda m: (-m.score, m.sku))[:limit]
