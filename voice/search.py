"""Audio to an answer: suppress steady background noise, decode under the catalogue grammar,
strip the question words, match the rest against the catalogue, and decide whether the store
sells what was asked for.

The grammar makes the engine answer with catalogue words, so the danger is not a garbled
transcript but a confident wrong product for a question about something the store does not sell.
Two guards stand against that: the grammar's filler path (off-catalogue speech decodes as filler
words, which count against a product), and the score threshold on the match. Below the threshold
the answer says "not in this store" and offers the closest products only as "did you mean".
Noise suppression (:mod:`voice.denoise`) is for the questions asked beside a fridge or music;
a recording with exact digital silence gets a faint noise floor first (:mod:`voice.silence`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from voice import rnnoise
from voice.audio import AudioLimits, prepare, read_wav
from voice.denoise import Method, in_use, suppress_noise
from voice.engine import SpeechEngine, Stream
from voice.grammar import CatalogGrammar, build_grammar, words_of
from voice.languages import Language
from voice.matcher import CatalogEntry, Match, ProductMatcher
from voice.silence import add_floor_under_silence, holds_no_speech
from voice.spoken import with_spoken_forms

DEFAULT_LIMITS = AudioLimits()
#: The engines' unknown-word markers ("[unk]", "<unk>") as ``words_of`` reads them: filler that
#: names nothing, not even something asked for.
UNKNOWN_WORD = "unk"


@dataclass(frozen=True)
class SearchSettings:
    """How sure a match must be to count as 'in this store', and how much to show."""

    accept_score: float = 0.8
    suggest_score: float = 0.6
    results: int = 3
    noise_suppression: Method = "rnnoise"


@dataclass(frozen=True)
class VoiceAnswer:
    """What the kiosk shows for one spoken question."""

    transcript: str
    asked: str
    heard: str
    results: tuple[Match, ...]
    did_you_mean: tuple[Match, ...]
    in_store: bool
    ms: float

    def to_json(self) -> dict[str, Any]:
        return {
            "transcript": self.transcript,
            "asked": self.asked,
            "heard": self.heard,
            "results": [m.__dict__ for m in self.results],
            "did_you_mean": [m.__dict__ for m in self.did_you_mean],
            "in_store": self.in_store,
            "ms": round(self.ms, 1),
        }


class VoiceSearch:
    """One catalogue's grammar compiled for one engine, plus the matcher for its transcripts.

    Immutable once built: a catalogue change builds a new one, so a decode in flight never sees
    half a grammar.
    """

    def __init__(
        self,
        engine: SpeechEngine,
        entries: Iterable[CatalogEntry],
        language: Language,
        settings: SearchSettings = SearchSettings(),
        pronunciations: Mapping[str, str] | None = None,
    ) -> None:
        entries = [with_spoken_forms(entry, language) for entry in entries]
        self.engine = engine
        self.language = language
        self.settings = settings
        self.grammar: CatalogGrammar = build_grammar(entries, engine, language, pronunciations)
        if not self.grammar.spec.products:
            raise ValueError(
                f"no product has a name in language {language.code!r} that the "
                f"{engine.name} model can say; add '{language.code}' names to the catalogue"
            )
        self.matcher = ProductMatcher(entries)
        spec = self.grammar.spec
        # longest first, so "where can i find" is taken before "where can i"
        self._before = sorted(spec.before, key=len, reverse=True)
        self._after = sorted(spec.after, key=len, reverse=True)
        self._compiled = engine.compile(self.grammar.spec)

    def answer_wav(self, data: bytes, limits: AudioLimits = DEFAULT_LIMITS) -> VoiceAnswer:
        """Answer a WAV file; raises :class:`voice.audio.AudioError` for unusable audio."""
        started = time.perf_counter()
        pcm = prepare(read_wav(data, limits), self.engine.sample_rate)
        return self.answer_pcm(pcm, started)

    def answer_pcm(
        self, pcm: bytes, started: float | None = None, fed: rnnoise.Denoiser | None = None
    ) -> VoiceAnswer:
        """Answer 16-bit mono PCM already at the engine's rate; ``fed`` is RNNoise that a stream
        fed with exactly ``pcm`` as it arrived."""
        started = time.perf_counter() if started is None else started
        rate = self.engine.sample_rate
        if holds_no_speech(pcm, rate):
            return self.interpret("", started)
        floored = add_floor_under_silence(pcm, rate)
        if floored != pcm:  # RNNoise heard the recording without the floor
            fed = None
        cleaned = suppress_noise(floored, rate, self.settings.noise_suppression, fed)
        transcript = self.engine.decode(self._compiled, cleaned)
        return self.interpret(transcript, started)

    def stream(self) -> VoiceStream:
        """A streaming question: feed PCM pieces, read partial transcripts, then the answer."""
        return VoiceStream(self, self.engine.stream(self._compiled))

    def interpret(self, transcript: str, started: float | None = None) -> VoiceAnswer:
        """Turn a transcript into products; also used for free-form transcripts in the bench."""
        started = time.perf_counter() if started is None else started
        asked, heard, fillers = self._parts(transcript)
        matches = (
            self.matcher.search(
                heard, limit=self.settings.results * 3, lang=self.language.code, whole=True
            )
            if heard
            else []
        )
        # More filler than product words means the engine found no product there.
        confident = bool(heard) and fillers <= len(heard.split()) // 2
        accepted = tuple(m for m in matches if confident and m.score >= self.settings.accept_score)[
            : self.settings.results
        ]
        suggested = tuple(
            m for m in matches if m not in accepted and m.score >= self.settings.suggest_score
        )[: self.settings.results]
        return VoiceAnswer(
            transcript=transcript,
            asked=asked,
            heard=heard,
            results=accepted,
            did_you_mean=suggested,
            in_store=bool(accepted),
            ms=(time.perf_counter() - started) * 1000.0,
        )

    def _parts(self, transcript: str) -> tuple[str, str, int]:
        """(what was asked for: the words that are not question words; the words of it that name
        a product; the filler count), repaired spellings joined back in both.

        Why both: "do you have mozzarella" names no product, and the kiosk can still say it has
        no "mozzarella" instead of repeating the whole question. The question words are taken
        off the ends first, as the grammar put them there, so a product word that is also a
        question word ("can" in "Coca-Cola 330ml Can") is dropped only where it asks."""
        grammar = self.grammar
        core = self._without_carriers(words_of(transcript))
        asked = [
            w
            for w in core
            if w != UNKNOWN_WORD and (w in grammar.product_words or w not in grammar.carrier_words)
        ]
        kept = [w for w in asked if w in grammar.product_words or w not in grammar.filler_words]
        fillers = sum(
            w == UNKNOWN_WORD
            or (
                w in grammar.filler_words
                and w not in grammar.product_words
                and w not in grammar.carrier_words
            )
            for w in core
        )
        return self._spelled_back(asked), self._spelled_back(kept), fillers

    def _without_carriers(self, words: list[str]) -> list[str]:
        """``words`` without the longest question phrase they start and end with, and the
        article or particle beside the name."""
        spec = self.grammar.spec
        for carrier in self._before:
            if len(carrier) < len(words) and tuple(words[: len(carrier)]) == carrier:
                words = words[len(carrier) :]
                break
        for carrier in self._after:
            if len(carrier) < len(words) and tuple(words[-len(carrier) :]) == carrier:
                words = words[: -len(carrier)]
                break
        if len(words) > 1 and words[0] in spec.articles:
            words = words[1:]
        if len(words) > 1 and words[-1] in spec.particles:
            words = words[:-1]
        return words

    def _spelled_back(self, words: list[str]) -> str:
        """The words as one string, each respelling the grammar used put back as the word."""
        text = " ".join(words)
        for spelled, word in sorted(self.grammar.respellings.items(), key=lambda kv: -len(kv[0])):
            text = f" {text} ".replace(f" {spelled} ", f" {word} ").strip()
        return text


class VoiceStream:
    """A question arriving in pieces from the kiosk's microphone.

    Partial transcripts come from the engine's own streaming decode, as the customer speaks;
    the final answer decodes the whole question again through :meth:`VoiceSearch.answer_pcm`,
    so it gets the noise suppression (which needs the whole recording to know the noise) and
    is exactly what an upload of the same audio would get. RNNoise cleans the pieces as they
    arrive, so the customer does not wait for it after the last word; whether its output is
    used is decided on the whole recording, as for an upload.
    """

    def __init__(self, search: VoiceSearch, stream: Stream) -> None:
        self._search = search
        self._stream = stream
        self._audio = bytearray()
        rate = search.engine.sample_rate
        wanted = in_use(search.settings.noise_suppression) == "rnnoise"
        self._denoiser = rnnoise.Denoiser(rate) if wanted else None

    def accept(self, pcm: bytes) -> str:
        """Feed 16-bit PCM at the engine's rate; returns the partial transcript."""
        self._audio.extend(pcm)
        if self._denoiser is not None:
            self._denoiser.accept(np.frombuffer(pcm, dtype="<i2").astype(np.float64))
        return self._stream.accept(add_floor_under_silence(pcm, self._search.engine.sample_rate))

    def finish(self) -> VoiceAnswer:
        """The answer for everything fed so far."""
        return self._search.answer_pcm(bytes(self._audio), fed=self._denoiser)
