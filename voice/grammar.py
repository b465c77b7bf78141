"""The catalogue grammar: what a customer may say at the kiosk, in words the speech model knows.

With a grammar of "carrier + product name" a small offline model goes from useless to reliable,
but only if every word of the grammar is in the model's vocabulary: both engines silently drop
a word they do not know, and a product then can never be heard. So every word is checked here,
at catalogue import; a missing word is repaired where the engine can (a guessed pronunciation for
pocketsphinx, a spelling made of known words for Vosk) and reported either way, with what the
store can do about it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voice.engine import GrammarSpec, Repair, SpeechEngine
from voice.languages import Language, segment
from voice.matcher import CatalogEntry

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


@dataclass(frozen=True)
class MissingWord:
    """A grammar word the model does not know, where it occurs and what was done about it."""

    word: str
    text: str
    skus: tuple[str, ...]
    repair: Repair | None
    suggestion: str

    def to_json(self) -> dict[str, Any]:
        return {
            "word": self.word,
            "in": self.text,
            "skus": list(self.skus),
            "repaired_as": None
            if self.repair is None
            else {"kind": self.repair.kind, "value": self.repair.value},
            "suggestion": self.suggestion,
        }


@dataclass(frozen=True)
class VocabularyReport:
    """The result of checking a catalogue's words against a model, shown to staff at import."""

    engine: str
    language: str
    words_checked: int
    missing: tuple[MissingWord, ...]
    products_without_name: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing and not self.products_without_name

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "language": self.language,
            "words_checked": self.words_checked,
            "missing": [m.to_json() for m in self.missing],
            "products_without_name": list(self.products_without_name),
        }


@dataclass(frozen=True)
class CatalogGrammar:
    """A checked grammar plus what voice search needs to read transcripts back."""

    language: Language
    spec: GrammarSpec
    report: VocabularyReport
    product_words: frozenset[str]
    carrier_words: frozenset[str]
    filler_words: frozenset[str]
    #: model word sequence (space-joined) -> the catalogue word it spells, for repaired words
    respellings: Mapping[str, str] = field(default_factory=dict)


def words_of(text: str) -> list[str]:
    """Lower-case words of a name or phrase, keeping inner apostrophes ("i'm")."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    return _WORD.findall(folded)


def without_accents(word: str) -> str:
    """``word`` with its accents dropped ("jalapeño" -> "jalapeno"); Hangul stays whole."""
    bare = "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare)


def english_plural(word: str) -> str:
    """The regular English plural, so "do you have bananas" matches the product "Banana"."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith("o") and len(word) > 1 and word[-2] not in "aeiou":
        return word + "es"
    return word + "s"


class _Checker:
    """Checks words once each and remembers how each missing one was handled."""

    def __init__(
        self, engine: SpeechEngine, language: Language, pronunciations: Mapping[str, str]
    ) -> None:
        self.engine = engine
        self.language = language
        self.pronunciations = {w.casefold(): p for w, p in pronunciations.items()}
        self.checked: dict[str, list[str] | None] = {}
        self.repairs: dict[str, Repair | None] = {}
        self.added: dict[str, str] = {}

    def words(self, text: str) -> list[str]:
        """Model words of ``text``; for unspaced scripts the vocabulary decides the split."""
        raw = words_of(text)
        if self.language.spaced:
            return raw
        out: list[str] = []
        for chunk in raw:
            out.extend(segment(chunk, self.engine.knows) or [chunk])
        return out

    def resolve(self, word: str) -> list[str] | None:
        """The model words that say ``word``, or None when the model cannot say it."""
        if word in self.checked:
            return self.checked[word]
        result: list[str] | None
        if word in self.pronunciations:
            self.added[word] = self.pronunciations[word]
            result = [word]
        elif self.engine.knows(word):
            result = [word]
        elif (plain := without_accents(word)) != word and self.engine.knows(plain):
            result = [plain]  # "häagen" -> "haagen": spelled back in answers like a repair
        else:
            repair = self.engine.repair(word)
            self.repairs[word] = repair
            if repair is None:
                result = None
            elif repair.kind == "pronunciation":
                self.added[word] = repair.value
                result = [word]
            else:
                result = repair.value.split()
        self.checked[word] = result
        return result


def _suggestion(word: str, repair: Repair | None, engine: str) -> str:
    if repair is None:
        return (
            f"'{word}' is not in the {engine} model's vocabulary and cannot be spelled with "
            "words it knows: add an alias made of everyday words (or give a pronunciation in "
            "voice.pronunciations for pocketsphinx); until then the word is left out of the "
            "grammar"
        )
    if repair.kind == "pronunciation":
        return (
            f"'{word}' is not in the dictionary; the grammar uses the guessed pronunciation "
            f"'{repair.value}'. If customers say it differently, set "
            f"voice.pronunciations.{word} to the right ARPAbet phones"
        )
    return (
        f"'{word}' is not in the {engine} model's vocabulary; the grammar listens for "
        f"'{repair.value}' instead. An alias in words the model knows may work better"
    )


def build_grammar(
    entries: Iterable[CatalogEntry],
    engine: SpeechEngine,
    language: Language,
    pronunciations: Mapping[str, str] | None = None,
) -> CatalogGrammar:
    """Check every name, alias and carrier against ``engine`` and build the grammar."""
    checker = _Checker(engine, language, pronunciations or {})
    where: dict[str, tuple[str, set[str]]] = {}
    products: list[tuple[str, ...]] = []
    respellings: dict[str, str] = {}
    without_name: list[str] = []
    for entry in entries:
        texts = [entry.names[language.code]] if language.code in entry.names else []
        texts += entry.aliases.get(language.code, [])
        phrases = 0
        for text in texts:
            phrase = _phrase(text, entry.sku, checker, where, respellings)
            if phrase:
                products.append(tuple(phrase))
                phrases += 1
                if language.code == "en":
                    plural = english_plural(phrase[-1])
                    pinned = checker.pronunciations.get(phrase[-1])
                    if pinned is not None and plural not in checker.pronunciations:
                        # the store's pronunciation, not the dictionary's, with its ending
                        checker.added[plural] = plural_phones(pinned)
                        products.append((*phrase[:-1], plural))
                    elif checker.engine.knows(plural):
                        products.append((*phrase[:-1], plural))
        if phrases == 0:
            without_name.append(entry.sku)
    carriers = {
        side: tuple(
            tuple(words)
            for phrase in phrases
            if (words := _phrase(phrase, None, checker, where, respellings))
        )
        for side, phrases in (("before", language.before), ("after", language.after))
    }
    singles = {
        kind: tuple(w for w in words if checker.resolve(w) == [w])
        for kind, words in (("articles", language.articles), ("particles", language.particles))
    }
    product_words = frozenset(w for p in products for w in p)
    # The engine's filler words, then the language's shop phrases the model can say, unless one
    # runs inside a product's name (see Language.shop_fillers).
    phrases = tuple(
        p
        for p in language.shop_fillers()[1]
        if all(map(engine.knows, p.split())) and not _inside_a_name(tuple(p.split()), products)
    )
    fillers = (
        tuple(
            w for w in dict.fromkeys(engine.filler_words(product_words)) if w not in product_words
        )
        + phrases
    )
    # An article or particle the model lacks is noted in no name or carrier: it is its own
    # text. A size or number given a pronunciation ("330ml": "three hundred thirty m l") is
    # said as written and the name is also heard without it (voice.spoken): nothing for the
    # staff to do, so it is not reported.
    missing = tuple(
        MissingWord(
            word,
            where.get(word, (word, set()))[0],
            tuple(sorted(where.get(word, (word, set()))[1])),
            repair,
            _suggestion(word, repair, engine.name),
        )
        for word, repair in checker.repairs.items()
        if not (repair is not None and repair.kind == "pronunciation" and _has_digit(word))
    )
    carrier_words = (
        frozenset(w for group in (*carriers["before"], *carriers["after"]) for w in group)
        | frozenset(singles["articles"])
        | frozenset(singles["particles"])
    )
    spec = GrammarSpec(
        products=tuple(dict.fromkeys(products)),
        before=carriers["before"],
        after=carriers["after"],
        articles=singles["articles"],
        particles=singles["particles"],
        fillers=fillers,
        pronunciations=tuple(sorted(checker.added.items())),
        store_pronounced=_store_pronounced(checker, language),
    )
    report = VocabularyReport(
        engine=engine.name,
        language=language.code,
        words_checked=len(checker.checked),
        missing=missing,
        products_without_name=tuple(without_name),
    )
    return CatalogGrammar(
        language=language,
        spec=spec,
        report=report,
        product_words=product_words,
        carrier_words=carrier_words - product_words,
        filler_words=frozenset(w for filler in fillers for w in filler.split()),
        respellings=respellings,
    )


def _store_pronounced(checker: _Checker, language: Language) -> tuple[str, ...]:
    """The words the store gave a pronunciation for, and their English plurals, which are said
    after it (a store that pins "banana" means "bananas" too)."""
    given = {w for w in checker.added if w in checker.pronunciations}
    plurals = {english_plural(w) for w in given} if language.code == "en" else set()
    return tuple(sorted(given | (plurals & set(checker.added))))


def plural_phones(phones: str) -> str:
    """ARPAbet of the English plural of a word said ``phones``: IH Z after a hissing sound, S
    after another voiceless one, else Z."""
    last = phones.split()[-1]
    if last in ("S", "Z", "SH", "ZH", "CH", "JH"):
        return f"{phones} IH Z"
    return f"{phones} {'S' if last in ('P', 'T', 'K', 'F', 'TH') else 'Z'}"


def _inside_a_name(words: tuple[str, ...], products: list[tuple[str, ...]]) -> bool:
    """Whether a phrase runs inside a product's name or alias ("oat milk" in "oatly oat
    milk", "peanut butter" in "smooth peanut butter"): as filler it would swallow the product."""
    n = len(words)
    return any(p[i : i + n] == words for p in products for i in range(len(p) - n + 1))


def _has_digit(word: str) -> bool:
    return any(ch.isdigit() for ch in word)


def _phrase(
    text: str,
    sku: str | None,
    checker: _Checker,
    where: dict[str, tuple[str, set[str]]],
    respellings: dict[str, str],
) -> list[str]:
    """Model words for one name, alias or carrier; notes where each missing word occurs."""
    out: list[str] = []
    for word in checker.words(text):
        spoken = checker.resolve(word)
        if word in checker.repairs:
            first, skus = where.setdefault(word, (text, set()))
            if sku is not None:
                skus.add(sku)
        if spoken is None:
            continue
        if spoken != [word]:
            respellings[" ".join(spoken)] = word
        out.extend(spoken)
    return out
