"""Pronunciations for words the English dictionary lacks (brand names such as "Arla", "Oatly").

pocketsphinx drops a grammar word it has no pronunciation for, so a product called "Oatly oat
milk" would only ever be heard as "oat milk". espeak-ng, which the hub installs anyway, reads any
spelling aloud; its IPA is mapped here to the ARPAbet phones of the CMU dictionary. The guess is
reported to the store, which can override it in the voice configuration.
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from collections.abc import Sequence

#: The 39 phones of the CMU dictionary (ARPAbet without stress marks), which pocketsphinx's
#: US English model is built on: a store's own pronunciation may use only these.
ARPABET = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V "
    "W Y Z ZH".split()
)

#: IPA (as espeak-ng writes it for en-us) to ARPAbet; longest keys are tried first.
_IPA_TO_ARPABET: dict[str, str] = {
    "ɑːɹ": "AA R",
    "ɔːɹ": "AO R",
    "ɪɹ": "IH R",
    "ɛɹ": "EH R",
    "ʊɹ": "UH R",
    "aɪɚ": "AY ER",
    "aɪə": "AY ER",
    "eə": "EH R",
    "ɪə": "IH R",
    "ʊə": "UH R",
    "ɪəʊ": "IY OW",
    "əʊ": "OW",
    "aɪ": "AY",
    "aʊ": "AW",
    "eɪ": "EY",
    "oʊ": "OW",
    "ɔɪ": "OY",
    "dʒ": "JH",
    "tʃ": "CH",
    "ɑː": "AA",
    "ɑ": "AA",
    "æ": "AE",
    "ʌ": "AH",
    "ə": "AH",
    "ɚ": "ER",
    "ɜː": "ER",
    "ɜ": "ER",
    "ɔː": "AO",
    "ɔ": "AO",
    "ɛ": "EH",
    "e": "EH",
    "ɪ": "IH",
    "iː": "IY",
    "i": "IY",
    "o": "OW",
    "ʊ": "UH",
    "uː": "UW",
    "u": "UW",
    "ɐ": "AH",
    "ᵻ": "IH",
    "ɒ": "AA",
    "a": "AE",
    "b": "B",
    "d": "D",
    "f": "F",
    "ɡ": "G",
    "g": "G",
    "h": "HH",
    "k": "K",
    "l": "L",
    "m": "M",
    "n": "N",
    "ŋ": "NG",
    "p": "P",
    "ɹ": "R",
    "r": "R",
    "s": "S",
    "ʃ": "SH",
    "t": "T",
    "θ": "TH",
    "ð": "DH",
    "v": "V",
    "w": "W",
    "j": "Y",
    "z": "Z",
    "ʒ": "ZH",
    "ɾ": "T",
    "x": "K",
    "ç": "HH",
    "ɬ": "L",
    "ʔ": "",
    "ː": "",
}
#: espeak-ng's English accents a store may have its catalogue's words listened for in, beside
#: the dictionary's American pronunciations (``voice.sphinx``).
ACCENTS = (
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
_KEYS = sorted(_IPA_TO_ARPABET, key=len, reverse=True)
_IGNORED = set("ˈˌ‿\u0329\u0303\u0361-")


class PronunciationUnavailable(RuntimeError):
    """espeak-ng is not installed, so no pronunciation can be guessed."""


def ipa_to_arpabet(ipa: str) -> str:
    """ARPAbet phones for an IPA string; stress marks dropped, doubled consonants merged."""
    text = "".join(ch for ch in unicodedata.normalize("NFD", ipa) if ch not in _IGNORED)
    phones: list[str] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        for key in _KEYS:
            if text.startswith(key, i):
                for phone in _IPA_TO_ARPABET[key].split():
                    if not phones or phones[-1] != phone or phone in _VOWELS:
                        phones.append(phone)
                i += len(key)
                break
        else:
            i += 1  # a symbol with no English counterpart is skipped
    return " ".join(phones)


_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


def guess_arpabet(word: str, voice: str = "en-us") -> str:
    """ARPAbet for ``word`` as espeak-ng would say it."""
    return guess_arpabet_all([word], voice)[word]


def guess_arpabet_all(words: Sequence[str], voice: str = "en-us") -> dict[str, str]:
    """ARPAbet for each of ``words`` as espeak-ng's ``voice`` says it; one espeak-ng run for
    all of them (a catalogue has hundreds of words), one run each if its lines do not pair up.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise PronunciationUnavailable(
            "espeak-ng is not installed, so pronunciations of new words cannot be guessed; "
            "install it (apt-get install espeak-ng) or give them in voice.pronunciations"
        )

    def ipa(text: str) -> list[str]:
        result = subprocess.run(
            [exe, "-q", "--ipa", "-v", voice],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return result.stdout.strip().splitlines()

    lines = ipa("".join(f"{word}\n" for word in words)) if words else []
    if len(lines) != len(words):
        lines = [" ".join(ipa(word)) for word in words]
    return {word: ipa_to_arpabet(line) for word, line in zip(words, lines, strict=True)}


def same_consonants(phones: str, other: str) -> bool:
    """Whether two ARPAbet strings have the same consonants in the same order (differing, if
    at all, in vowels: how accents mostly differ)."""

    def consonants(text: str) -> list[str]:
        return [phone for phone in text.split() if phone not in _VOWELS]

    return consonants(phones) == consonants(other)
