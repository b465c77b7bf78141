"""Text to products: fuzzy matching of a typed query or a transcript against product names and
aliases in every language of the catalogue. Kiosk text search and voice search share it, so a
product found by typing is found by asking.

Besides the plain folded text, each name is indexed in the forms in which spelling mistakes and
recognition errors are small:

- Korean as its jamo (letters) with spaces removed, so "양송이 버섯" matches "양송이버섯" and
  one wrong letter costs one letter, not one whole syllable;
- Chinese as toneless pinyin, so homophones and tone errors ("酸奶" heard as "蒜奶") still
  find the product.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process


@dataclass(frozen=True)
class CatalogEntry:
    """What the matcher needs to know of one product."""

    sku: str
    names: dict[str, str]
    aliases: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def tagged(
        cls, sku: str, names: Mapping[str, str], aliases: Mapping[str, Iterable[str]]
    ) -> CatalogEntry:
        """An entry from names and aliases keyed by language tags as shop systems write them
        ("en-US", "en_GB", "EN"): grammars and matching look names up by the bare language code
        ("en"), so a name kept under its tag is a product no question could reach. A second name
        in one language ("en-US" and "en-GB") is kept as an alias of it, not dropped."""
        by_code: dict[str, str] = {}
        extra: dict[str, list[str]] = {}
        for key, text in names.items():
            code = language_code(key)
            if code not in by_code:
                by_code[code] = text
            elif text != by_code[code]:
                extra.setdefault(code, []).append(text)
        for key, texts in aliases.items():
            extra.setdefault(language_code(key), []).extend(texts)
        return cls(sku, by_code, {code: list(dict.fromkeys(t)) for code, t in extra.items()})


def language_code(tag: str) -> str:
    """A language tag's primary subtag, lower-case: "en-US", "en_GB" and "EN" are all "en"."""
    return tag.strip().replace("_", "-").split("-")[0].lower()


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


def _is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f"


def has_hangul(text: str) -> bool:
    """Whether ``text`` has any Korean letter (a syllable or a jamo)."""
    return any(_is_hangul(c) for c in text)


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def has_han(text: str) -> bool:
    """Whether ``text`` has any Chinese character."""
    return any(_is_han(c) for c in text)


def jamo_key(text: str) -> str:
    """Hangul split into its letters (NFD jamo), spaces and punctuation removed."""
    return "".join(ch for ch in unicodedata.normalize("NFD", normalise(text)) if not ch.isspace())


def pinyin_key(text: str) -> str:
    """Toneless pinyin of the Chinese characters, one syllable per word; other text kept.

    pypinyin is imported here, when the first Chinese text is met (a Chinese catalogue: when it
    is indexed), not with the module: it loads its dictionaries at import, 55 MB of a hub's
    memory that a store without Chinese names would hold for nothing."""
    from pypinyin import lazy_pinyin

    return " ".join(lazy_pinyin(normalise(text).replace(" ", "")))


def _is_latin_words(text: str) -> bool:
    """Only the letters a-z and spaces: what pinyin typed without tone marks looks like."""
    return bool(text) and all("a" <= ch <= "z" or ch == " " for ch in text)


def _joined_ratio(query: str, choice: str, **kwargs: object) -> float:
    """rapidfuzz's ratio with the spaces between syllables left out on both sides."""
    return fuzz.ratio(query.replace(" ", ""), choice.replace(" ", ""), **kwargs)


#: Each form: whether a text has it, how it is computed, and the scorer that suits it.
_FORMS: dict[str, tuple[Callable[[str], bool], Callable[[str], str]]] = {
    "jamo": (has_hangul, jamo_key),
    "pinyin": (has_han, pinyin_key),
}


class ProductMatcher:
    """An index of every name and alias of every product, searched with rapidfuzz."""

    def __init__(self, entries: Iterable[CatalogEntry]) -> None:
        self._choices: list[str] = []
        self._owners: list[tuple[str, str, str]] = []  # (sku, lang, original text)
        self._forms: dict[str, tuple[list[str], list[tuple[str, str, str]]]] = {
            form: ([], []) for form in _FORMS
        }
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
        for form, (applies, make) in _FORMS.items():
            if applies(text):
                choices, owners = self._forms[form]
                choices.append(make(text))
                owners.append((sku, lang, text))

    def search(
        self, text: str, limit: int = 5, lang: str | None = None, whole: bool = False
    ) -> list[Match]:
        """Products best matching ``text``, best first, one entry per product.

        Typed search (``whole=False``) lets a fragment match a longer name ("oat" finds "Oat
        milk"). A transcript (``whole=True``) is compared with each name as a whole: under a
        catalogue grammar the engine says whole names, and a fragment such as one stray syllable
        must not score 0.9 against every name that contains it.
        """
        query = normalise(text)
        if not query:
            return []
        best: dict[str, Match] = {}
        plain = fuzz.ratio if whole else fuzz.WRatio
        self._collect(query, self._choices, self._owners, plain, limit, lang, best)
        for form, (applies, make) in _FORMS.items():
            choices, owners = self._forms[form]
            if choices and applies(text):
                self._collect(make(text), choices, owners, fuzz.ratio, limit, lang, best)
        pinyin_choices, pinyin_owners = self._forms["pinyin"]
        if pinyin_choices and not whole and _is_latin_words(query):
            # pinyin typed on a Latin keyboard ("xiangjiao", "yan mai nai"), syllables joined
            # or not, finds the Chinese name it spells
            self._collect(query, pinyin_choices, pinyin_owners, _joined_ratio, limit, lang, best)
        return sorted(best.values(), key=lambda m: (-m.score, m.sku))[:limit]

    @staticmethod
    def _collect(
        query: str,
        choices: list[str],
        owners: list[tuple[str, str, str]],
        scorer: Callable[..., float],
        limit: int,
        lang: str | None,
        best: dict[str, Match],
    ) -> None:
        if not choices:
            return
        hits = process.extract(
            query, choices, scorer=scorer, limit=max(limit * 8, 20), score_cutoff=50
        )
        for _, score, index in hits:
            sku, name_lang, original = owners[index]
            if lang is not None and name_lang != lang:
                score *= 0.98
            match = Match(sku=sku, score=round(score / 100.0, 4), matched=original)
            if sku not in best or match.score > best[sku].score:
                best[sku] = match
