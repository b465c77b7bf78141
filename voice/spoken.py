"""How people say a catalogue name: the name as read aloud, and the name without its pack size.

Store catalogues name products the way a shelf label does ("Coca-Cola 330ml Can", "Free-range
Eggs x12", "Ben & Jerry's Cookie Dough", "100% Orange Juice 1.5 L"). A customer asks for "coca
cola", "free range eggs", "ben and jerry's". The catalogue grammar listens only for the phrases
it is given, so a name said without its size had no complete path and came back as an empty
transcript or the nearest other product; a symbol the grammar dropped ("&") left a phrase no one
says ("ben jerry's"). Each name and alias therefore also enters the grammar and the matcher in
these spoken forms. Which words a form may lose is deliberately narrow (sizes, counts,
percentages, a bracketed note, the label's own words such as "loose", then a trailing packaging
word): dropping a brand or a variety would make different products sound alike, and that is
what aliases are for.
"""

from __future__ import annotations

import re
from dataclasses import replace

from voice.grammar import words_of
from voice.languages import Language
from voice.matcher import CatalogEntry

_NUMBER = r"\d+(?:[.,]\d+)?"
#: Units of a pack size, Latin (any language's labels use them) and Chinese.
_UNITS = (
    r"ml|cl|dl|l|ltr|litres?|liters?|pints?|pt|mg|g|gr|grams?|kg|kilos?|oz|fl\s*oz|lbs?|"
    r"pk|pack|packs|ct|pcs|pieces|rolls|sheets|tabs|tablets|capsules|bags|tea\s*bags|sachets|"
    r"pods|bars|slices|cans|bottles|tins|jars|pots|pouches|cartons|packets|"
    r"毫升|升|千克|公斤|克"
)
#: Letters only (a digit may touch a unit: "330ml"; a letter may not: "milk" is no "ml").
_NO_LETTER_BEFORE, _NO_LETTER_AFTER = r"(?<![^\W\d_])", r"(?![^\W\d_])"
_MEASURE = re.compile(
    "|".join(
        (
            r"\(.*?\)|\[.*?\]",  # a bracketed note: "(45g)", "[new]"
            rf"{_NUMBER}\s*%",  # "100%"
            # "330ml", "1.5 L", "4 x 415g"
            rf"{_NO_LETTER_BEFORE}{_NUMBER}\s*(?:x\s*{_NUMBER}\s*)?(?:{_UNITS}){_NO_LETTER_AFTER}",
            rf"{_NO_LETTER_BEFORE}x\s*\d+(?!\w)|(?<!\w)\d+\s*x{_NO_LETTER_AFTER}",  # "x12", "6x"
            r"(?<!\w)pack\s+of\s+\d+(?!\w)",  # "pack of 6"
        )
    ),
    re.IGNORECASE,
)
_DECIMAL = re.compile(r"(\d)[.,](\d)")


def spoken_forms(text: str, language: Language) -> tuple[str, ...]:
    """The ways of saying ``text`` that differ from its plain words, most complete first.

    The name as read aloud spells the language's symbols ("&" -> "and", "1.5" -> "1 point 5");
    the short form drops the pack size, a count inside the name ("Birds Eye 10 Fish Fingers"),
    the label's own words and then, from a name that had a size, trailing packaging words, but
    never every word.
    """
    short = words_of(_read_aloud(_MEASURE.sub(" ", text), language))
    # A bare number between words is a count; first or last it may be the name ("5 Alive").
    short = [w for i, w in enumerate(short) if not (w.isdigit() and 0 < i < len(short) - 1)]
    short = [w for w in short if w not in language.label_words] or short
    # Only a label with a pack size loses its packaging word: "Water Bottle" is the product.
    if _MEASURE.search(text):
        while len(short) > 1 and short[-1] in language.pack_words:
            short.pop()
    plain = words_of(text)
    forms = [words_of(_read_aloud(text, language)), short]
    return tuple(dict.fromkeys(" ".join(f) for f in forms if f and f != plain))


def with_spoken_forms(entry: CatalogEntry, language: Language) -> CatalogEntry:
    """``entry`` with the spoken forms of its names and aliases in ``language`` added as aliases,
    so the grammar listens for them and the matcher finds the product from them."""
    code = language.code
    texts = ([entry.names[code]] if code in entry.names else []) + entry.aliases.get(code, [])
    known = {" ".join(words_of(t)) for t in texts}
    extra = [f for t in texts for f in spoken_forms(t, language) if f not in known]
    if not extra:
        return entry
    aliases = {**entry.aliases, code: [*entry.aliases.get(code, []), *dict.fromkeys(extra)]}
    return replace(entry, aliases=aliases)


def _read_aloud(text: str, language: Language) -> str:
    """``text`` with its symbols spelled as words of ``language``."""
    if language.decimal_word:
        text = _DECIMAL.sub(rf"\1 {language.decimal_word} \2", text)
    for symbol, word in language.symbols:
        text = text.replace(symbol, f" {word} ")
    for short, word in language.abbreviations:
        text = re.sub(rf"(?<!\w){short}\.?(?!\w)", f" {word} ", text, flags=re.IGNORECASE)
    return text
