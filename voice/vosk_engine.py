"""Vosk: the production engine, with whatever model the store installed for its language.

A runtime grammar is a list of phrases, which Vosk turns into a word bigram model. So the phrase
list here spells out each product name on its own and with each carrier and particle, which gives
the bigrams "name -> carrier" the weight real questions have; the filler words appear once each,
so they win only where no product fits. Outputs can still mix names (a bigram path through two
names); voice search matches them back to the catalogue fuzzily.

Recognisers are cheap (well under a millisecond) and the model is shared and thread-safe, so each
decode gets its own recogniser and no lock is needed.
"""

from __future__ import annotations

import json
import re
import tempfile
from functools import cached_property
from pathlib import Path

from rapidfuzz import fuzz, process

from voice.engine import EngineError, GrammarSpec, Repair
from voice.languages import language as language_named
from voice.languages import segment
from voice.matcher import has_hangul, jamo_key
from voice.trim import pad_quiet
from voice.vosk_model import check_model_dir, vocabulary

#: Words Vosk models use for speech they cannot place; never a product.
UNKNOWN_WORDS = ("[unk]", "<unk>", "<UNK>")
#: How alike (rapidfuzz ratio of the jamo, 0-100) a known word must be to stand in for a
#: missing Korean word: "아를라" -> "아글라" (86), "오틀리" -> "오트리" (92); a word with nothing
#: this close is reported as unsayable instead.
NEAR_WORD_SCORE = 80
#: Weight of the acoustic model against the grammar (Kaldi's ``--acoustic-scale``; Vosk models
#: ship 1.0). A catalogue grammar is a far better guide to what a kiosk hears than the general
#: language model that 1.0 was set for, so it gets more say. Measured on the Korean demo
#: catalogue (81 products and 16 off-catalogue questions, 3 espeak-ng voices, faint noise floor):
#: top-1 0.42 -> 0.53 at 0.7 (0.51 at 0.5, 0.47 at 0.3, 0.30 at 1.5), and on held-out questions
#: (other carriers, voice order and off-catalogue things) 0.40 -> 0.47 with false accepts the
#: same (6 of 16).
ACOUSTIC_SCALE = 0.7


class VoskEngine:
    """A loaded Vosk model for one language."""

    name = "vosk"

    def __init__(self, model_dir: Path, language: str) -> None:
        import vosk

        info = check_model_dir(model_dir)
        vosk.SetLogLevel(-2)
        self._overlay = tempfile.TemporaryDirectory(prefix="vosk-model-")
        try:
            self._model = vosk.Model(str(_with_acoustic_scale(model_dir, Path(self._overlay.name))))
        except Exception as exc:  # vosk raises a bare Exception when Kaldi fails
            raise EngineError(f"Vosk could not load the model in {model_dir}: {exc}") from exc
        self._vosk = vosk
        self.language = language
        self.sample_rate = info.sample_rate
        self._phrasing = language_named(language)
        self._model_dir = model_dir

    def knows(self, word: str) -> bool:
        return self._model.vosk_model_find_word(word) >= 0

    def repair(self, word: str) -> Repair | None:
        """A spelling in known words: pieces of the word, or for Korean a near-sounding word.

        A Korean name split into one-syllable words ("아를라" -> "아 를 라") is worse than no
        repair: Vosk's bigram grammar then hears those syllables everywhere. So Korean pieces
        must each be two syllables or more ("칸탈루프" -> "칸탈 루프"); otherwise the known word
        whose letters are closest stands in ("아를라" -> "아글라"), and the matcher maps it back.
        """
        pieces = segment(word, self.knows)
        hangul = has_hangul(word)
        if pieces and len(pieces) > 1 and not (hangul and min(map(len, pieces)) < 2):
            return Repair("spelling", " ".join(pieces))
        near = self._near_hangul_word(word) if hangul else None
        return Repair("spelling", near) if near else None

    def _near_hangul_word(self, word: str) -> str | None:
        words, keys = self._hangul_vocabulary
        hit = process.extractOne(
            jamo_key(word), keys, scorer=fuzz.ratio, score_cutoff=NEAR_WORD_SCORE
        )
        return words[hit[2]] if hit else None

    @cached_property
    def _hangul_vocabulary(self) -> tuple[list[str], list[str]]:
        """The model's Korean words and their jamo, read once, when a word first needs it."""
        words = [w for w in vocabulary(self._model_dir) if has_hangul(w)]
        return words, [jamo_key(w) for w in words]

    def filler_words(self, taken: frozenset[str]) -> tuple[str, ...]:
        words = (*self._phrasing.fillers, *self._phrasing.shop_fillers()[0])
        return tuple(w for w in dict.fromkeys(words) if w not in taken and self.knows(w))

    def compile(self, grammar: GrammarSpec) -> str:
        """The grammar as Vosk's JSON phrase list."""
        phrases: list[str] = []
        for product in grammar.products:
            name = " ".join(product)
            phrases.append(name)
            phrases.extend(f"{' '.join(c)} {name}" for c in grammar.before)
            phrases.extend(
                f"{' '.join(c)} {a} {name}" for c in grammar.before for a in grammar.articles
            )
            phrases.extend(f"{name} {' '.join(c)}" for c in grammar.after)
            phrases.extend(f"{name} {p}" for p in grammar.particles)
        for particle in grammar.particles:
            phrases.extend(f"{particle} {' '.join(c)}" for c in grammar.after)
        for filler in grammar.fillers:
            phrases.append(filler)
        phrases.extend(" ".join(c) for c in (*grammar.before, *grammar.after))
        unknown = next((w for w in UNKNOWN_WORDS if self.knows(w)), None)
        if unknown is not None:
            phrases.append(unknown)
        return json.dumps(phrases, ensure_ascii=False)

    def _recogniser(self, compiled: str | None) -> object:
        if compiled is None:
            return self._vosk.KaldiRecognizer(self._model, float(self.sample_rate))
        return self._vosk.KaldiRecognizer(self._model, float(self.sample_rate), compiled)

    def decode(self, compiled: object, pcm: bytes) -> str:
        # Vosk needs quiet around the words, after them most (see voice.trim); pocketsphinx,
        # by contrast, decodes best with it cut.
        return self._run(self._recogniser(str(compiled)), pad_quiet(pcm, self.sample_rate))

    def decode_free(self, pcm: bytes) -> str:
        return self._run(self._recogniser(None), pcm)

    @staticmethod
    def _run(recogniser: object, pcm: bytes) -> str:
        """Hear the question twice: once to adapt, once to decode.

        Vosk's models estimate the speaker vector (i-vector) and the feature normalisation
        online, from the frames heard so far, so the first words of a two-second question are
        decoded with almost no adaptation. ``Reset`` ends an utterance but keeps the feature
        pipeline, so the second hearing is decoded with both estimated from the whole question
        (what Kaldi's offline decoding does). Korean demo catalogue, 3 espeak-ng voices, faint
        floor: top-1 0.54 -> 0.61 and false accepts 4 of 16 -> 0 (bench questions), 0.49 -> 0.61
        (held-out questions); a third hearing gave 0.58 / 0.65. Twice the decoding time.
        """
        recogniser.AcceptWaveform(pcm)  # type: ignore[attr-defined]
        recogniser.Reset()  # type: ignore[attr-defined]
        recogniser.AcceptWaveform(pcm)  # type: ignore[attr-defined]
        return str(json.loads(recogniser.FinalResult()).get("text", ""))  # type: ignore[attr-defined]

    def stream(self, compiled: object) -> _VoskStream:
        return _VoskStream(self._recogniser(str(compiled)))


class _VoskStream:
    """Vosk's own streaming: partial results as audio arrives, finals at each endpoint."""

    def __init__(self, recogniser: object) -> None:
        self._rec = recogniser
        self._finals: list[str] = []

    def accept(self, pcm: bytes) -> str:
        rec = self._rec
        if rec.AcceptWaveform(pcm):  # type: ignore[attr-defined]
            self._finals.append(json.loads(rec.Result()).get("text", ""))  # type: ignore[attr-defined]
            partial = ""
        else:
            partial = json.loads(rec.PartialResult()).get("partial", "")  # type: ignore[attr-defined]
        return " ".join(t for t in (*self._finals, partial) if t)


def _with_acoustic_scale(model_dir: Path, overlay: Path) -> Path:
    """A view of ``model_dir`` in ``overlay`` (links to its files) whose conf/model.conf sets
    :data:`ACOUSTIC_SCALE`; the installed model itself is never changed."""
    for entry in model_dir.iterdir():
        if entry.name != "conf":
            (overlay / entry.name).symlink_to(entry.resolve())
    (overlay / "conf").mkdir()
    for entry in (model_dir / "conf").iterdir():
        if entry.name != "model.conf":
            (overlay / "conf" / entry.name).symlink_to(entry.resolve())
    conf = (model_dir / "conf" / "model.conf").read_text(encoding="utf-8", errors="replace")
    kept = [line for line in conf.splitlines() if not re.match(r"\s*--acoustic-scale\b", line)]
    (overlay / "conf" / "model.conf").write_text(
        "\n".join([*kept, f"--acoustic-scale={ACOUSTIC_SCALE}"]) + "\n", encoding="utf-8"
    )
    return overlay
