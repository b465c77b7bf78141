"""pocketsphinx: the English engine that works with no download (its wheel carries a US-English
acoustic model and the CMU dictionary).

The grammar is JSGF: optional carrier, optional article, then either a product name or one
everyday filler word. That is the filler path: speech about something the store does not sell
is often cheaper to explain as a common word than as the nearest product name, so it decodes as
filler and is rejected; the filler's weight keeps a real product name winning when it was said.
The filler list is short on purpose: more filler words reject more off-catalogue questions but
also more real ones (measured: 40 words, top-1 89 % and 67 % false accepts on a small sample; 300
words, 85 % and 17 %, and much worse at 10 dB). A repeating filler (``<filler>+``) and a loop of
single phones (the textbook garbage model) both made decoding many times slower than real time.

Utterances are always decoded whole (``full_utt``): in streaming mode pocketsphinx carries its
cepstral normalisation from one utterance into the next, so one noisy query would spoil the next.
A decoder is not thread-safe; one lock serialises the (fast: RTF about 0.04) decodes.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
from pathlib import Path

from pocketsphinx import Decoder, get_model_path

from voice.engine import EngineError, GrammarSpec, Repair
from voice.languages import language as language_named
from voice.pronounce import PronunciationUnavailable, guess_arpabet

#: How often a partial result is recomputed while streaming, in seconds of new audio.
PARTIAL_EVERY_S = 0.5
#: Decoder settings, measured on the demo catalogue (33 questions, 8 voices, CPU time):
#: - ``bestpath`` off: pocketsphinx's default lattice rescoring made grammar decoding slow, and
#:   slowest on noisy audio (a large lattice of filler-word exits): real-time factor 0.23 -> 0.04
#:   with a faint noise floor and 1.16 -> 0.06 at 10 dB white noise, top-1 the same or better.
#: - beams wider than the defaults (1e-48, 7e-29, 1e-48): a name that begins like another
#:   ("oatly oat milk" beside "oat milk") had every complete path pruned before the end, and the
#:   decoder returned nothing. Wider beams fix that: top-1 89 -> 96 % clean and 48 -> 56 % at
#:   10 dB white, for a real-time factor of about 0.06 clean and 0.11 at 10 dB.
DECODER_SETTINGS = {"bestpath": False, "beam": 1e-80, "wbeam": 1e-60, "pbeam": 1e-80}


class PocketsphinxEngine:
    """A pocketsphinx decoder with a free-form language model and catalogue grammars."""

    name = "pocketsphinx"

    def __init__(
        self,
        model_dir: Path | None = None,
        dictionary: Path | None = None,
        language: str = "en",
        filler_weight: float = 1e-2,
        max_fillers: int = 40,
    ) -> None:
        default = Path(get_model_path()) / "en-us"
        hmm = model_dir or default / "en-us"
        dict_path = dictionary or default / "cmudict-en-us.dict"
        lm = default / "en-us.lm.bin"
        for path, what in ((hmm, "acoustic model folder"), (dict_path, "dictionary")):
            if not path.exists():
                raise EngineError(f"pocketsphinx {what} {path} does not exist")
        self._hmm, self._dict, self._lm = hmm, dict_path, lm
        self._added: dict[str, str] = {}
        self._searches: dict[str, str] = {}
        self._workdir = tempfile.TemporaryDirectory(prefix="voice-dict-")
        self._decoder = self._load(dict_path)
        self.language = language
        self.sample_rate = int(self._decoder.config["samprate"])
        self.filler_weight = filler_weight
        self.max_fillers = max_fillers
        self._lock = threading.Lock()
        self._names = itertools.count()
        self._phrasing = language_named(language)

    def _load(self, dictionary: Path) -> Decoder:
        try:
            return Decoder(
                hmm=str(self._hmm),
                dict=str(dictionary),
                lm=str(self._lm),
                loglevel="FATAL",
                **DECODER_SETTINGS,
            )
        except (RuntimeError, ValueError) as exc:
            raise EngineError(
                f"pocketsphinx could not load the model in {self._hmm}: {exc}"
            ) from exc

    def knows(self, word: str) -> bool:
        with self._lock:
            return self._decoder.lookup_word(word) is not None

    def repair(self, word: str) -> Repair | None:
        try:
            phones = guess_arpabet(word)
        except PronunciationUnavailable:
            return None
        return Repair("pronunciation", phones) if phones else None

    def filler_words(self, taken: frozenset[str]) -> tuple[str, ...]:
        words = [w for w in self._phrasing.fillers if w not in taken and self.knows(w)]
        return tuple(words[: self.max_fillers])

    def compile(self, grammar: GrammarSpec) -> str:
        """Add the grammar's new words to the dictionary and register a JSGF search.

        Grammars of earlier catalogues stay registered (a decode in flight may still use one);
        a hub rebuilds only when its catalogue changes, so they stay few.
        """
        name = f"catalog{next(self._names)}"
        jsgf = to_jsgf(grammar, self.filler_weight)
        with self._lock:
            new = {w: p for w, p in grammar.pronunciations if self._added.get(w) != p}
            if new:
                # Words added to a live decoder break its grammar searches ("final result does
                # not match the grammar"), so the decoder is reloaded with a merged dictionary.
                self._added.update(new)
                merged = Path(self._workdir.name) / "dictionary.dict"
                base = self._dict.read_text(encoding="utf-8")
                extra = "".join(f"{w} {p}\n" for w, p in sorted(self._added.items()))
                merged.write_text(base.rstrip("\n") + "\n" + extra, encoding="utf-8")
                self._decoder = self._load(merged)
                for old_name, old_jsgf in self._searches.items():
                    self._decoder.add_jsgf_string(old_name, old_jsgf)
            try:
                self._decoder.add_jsgf_string(name, jsgf)
            except (RuntimeError, ValueError) as exc:
                raise EngineError(f"pocketsphinx rejected the catalogue grammar: {exc}") from exc
            self._searches[name] = jsgf
        return name

    def decode(self, compiled: object, pcm: bytes) -> str:
        with self._lock:
            self._decoder.activate_search(str(compiled))
            return self._run(pcm)

    def decode_free(self, pcm: bytes) -> str:
        with self._lock:
            self._decoder.activate_search()
            return self._run(pcm)

    def _run(self, pcm: bytes) -> str:
        decoder = self._decoder
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    def stream(self, compiled: object) -> _BufferedStream:
        return _BufferedStream(self, compiled)


class _BufferedStream:
    """Streaming on top of whole-utterance decoding: partials re-decode the audio so far."""

    def __init__(self, engine: PocketsphinxEngine, compiled: object) -> None:
        self._engine = engine
        self._compiled = compiled
        self._audio = bytearray()
        self._since = 0
        self._partial = ""

    def accept(self, pcm: bytes) -> str:
        self._audio.extend(pcm)
        self._since += len(pcm)
        if self._since >= PARTIAL_EVERY_S * self._engine.sample_rate * 2:
            self._since = 0
            self._partial = self._engine.decode(self._compiled, bytes(self._audio))
        return self._partial

    def finish(self) -> str:
        return self._engine.decode(self._compiled, bytes(self._audio)) if self._audio else ""


def to_jsgf(grammar: GrammarSpec, filler_weight: float) -> str:
    """The JSGF text for ``grammar``; the filler alternative is weighted against the products."""

    def alternatives(phrases: tuple[tuple[str, ...], ...]) -> str:
        return " | ".join(" ".join(p) for p in phrases)

    item = "<product>"
    if grammar.fillers:
        item = f"/1/ <product> | /{filler_weight:g}/ <filler>"
    optional = {
        "before": alternatives(grammar.before),
        "article": " | ".join(grammar.articles),
        "particle": " | ".join(grammar.particles),
        "after": alternatives(grammar.after),
    }
    query = " ".join(
        [f"[<{rule}>]" for rule in ("before", "article") if optional[rule]]
        + ["<item>"]
        + [f"[<{rule}>]" for rule in ("particle", "after") if optional[rule]]
    )
    rules = [
        "#JSGF V1.0;",
        "grammar catalog;",
        f"public <query> = {query};",
        f"<item> = {item};",
        f"<product> = {alternatives(grammar.products)};",
        *(f"<{rule}> = {body};" for rule, body in optional.items() if body),
    ]
    if grammar.fillers:
        rules.append(f"<filler> = {' | '.join(grammar.fillers)};")
    return "\n".join(rules) + "\n"
