"""The interface every speech engine offers, so voice search does not care whether Vosk or
pocketsphinx listens.

An engine knows its vocabulary (so the grammar can be checked before a customer ever speaks),
can repair a missing word (a guessed pronunciation, or a spelling made of words it knows), turns a
catalogue grammar into its own form once, and decodes whole utterances or streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


class EngineError(RuntimeError):
    """A speech model that cannot be loaded or used, with a message that says what to fix."""


@dataclass(frozen=True)
class Repair:
    """How a word missing from the model is made usable.

    ``pronunciation``: phones added to the engine's dictionary (pocketsphinx).
    ``spelling``: the word replaced by words the model knows, space-separated (Vosk).
    """

    kind: Literal["pronunciation", "spelling"]
    value: str


class Stream(Protocol):
    """Partial transcripts of one utterance fed in pieces (the final answer decodes it whole)."""

    def accept(self, pcm: bytes) -> str:
        """Take the next piece of 16-bit PCM and return the partial transcript."""


class SpeechEngine(Protocol):
    """A loaded speech model for one language."""

    name: str
    language: str
    sample_rate: int

    def knows(self, word: str) -> bool:
        """Whether ``word`` is in the model's vocabulary."""

    def repair(self, word: str) -> Repair | None:
        """A way to use a word the model lacks, or None when there is none."""

    def filler_words(self, taken: frozenset[str]) -> tuple[str, ...]:
        """Words (or phone-words) that let off-catalogue speech decode as 'something else'."""

    def compile(self, grammar: GrammarSpec) -> object:
        """The grammar in the engine's own form, built once per catalogue."""

    def decode(self, compiled: object, pcm: bytes) -> str:
        """Transcript of one whole utterance under ``compiled``."""

    def decode_free(self, pcm: bytes) -> str:
        """Transcript with the model's own language model (the free-form baseline)."""

    def stream(self, compiled: object) -> Stream:
        """Partial transcripts under ``compiled`` while the audio arrives."""


@dataclass(frozen=True)
class GrammarSpec:
    """What an engine needs to build its grammar; all words are in the model's vocabulary.

    ``products`` are word sequences of product names and aliases, ``before``/``after`` the
    carrier phrases, ``articles`` and ``particles`` single optional words, ``fillers`` the
    garbage words and phrases (space-separated), ``pronunciations`` words the engine must
    add before compiling, and ``store_pronounced`` those of them the store gave (said only so).
    """

    products: tuple[tuple[str, ...], ...]
    before: tuple[tuple[str, ...], ...]
    after: tuple[tuple[str, ...], ...]
    articles: tuple[str, ...]
    particles: tuple[str, ...]
    fillers: tuple[str, ...]
    pronunciations: tuple[tuple[str, str], ...]
    store_pronounced: tuple[str, ...] = ()
