"""pocketsphinx: the English engine that works with no download (its wheel carries a US-English
acoustic model and the CMU dictionary).

The grammar is JSGF: optional carrier, optional article, then either a product name or one
everyday filler word. That is the filler path: speech about something the store does not sell
is often cheaper to explain as a common word than as the nearest product name, so it decodes as
filler and is rejected. Which words make the filler matters most: the most frequent words of the
model's own language model (conversational English) cover the sounds of off-catalogue questions
far better than a hand-picked list. Measured on held-out questions (81 products, 44 off-catalogue
questions that the benchmark does not use, 8 voices, faint noise floor, the filler weighted 1e-2
unless said): 40 hand-picked words, top-1 96 % and 64 % false accepts; 150 words ranked by the
language model, 96 % and 43 %; 250 words, 96 % and 27 %; 400 words (weight 1), 95 % and 23 %,
a third slower.
The weight matters less; 1e-6 keeps 250 words from swallowing names said in 10 dB white noise (a
small catalogue: 5 -> 6 of 8) for 30 % false accepts instead of 27 %, and it is the default.
The language's shop words (``Language.shop_words``: "flour", "batteries", "toothpaste", ...)
join the filler after the frequent words, because off-catalogue questions in a shop are mostly
about other shop things: on 30 off-catalogue questions about things *not* in that list (quinoa,
mozzarella, printer ink, a kettle, ...) false accepts went from 50 % to 33 % for 13 % more CPU
time, top-1 unchanged with a faint floor (about 4 points lower at 10 dB white). With the list
grown to a grocery's aisles (about 370 things), the frequent words matter less and only the
first 100 are kept: on 60 off-catalogue things written independently of the list, false accepts
fell from 20 / 15 / 18 % to 7 / 10 / 15 % (faint floor, 10 dB pink, 10 dB white), top-1 on the
bench's products the same and the CPU time no higher; 50 frequent words let more through again.
Shop things of two or three words ("peanut butter", "bin bags") are filler phrases as well as
words: the filler takes one item, so such a question could only be heard as one of its words
plus nothing, or as the nearest product ("where is the oatly oat milk"). Questions about them,
spoken by espeak-ng's three voices with a faint floor and at 10 dB white noise: 50 -> 66 of 72
rejected, top-1 on the bench's products unchanged.
A filler word that sounds exactly like a catalogue word ("pair" beside "pear") is left out, or it
would swallow the product. A repeating filler (``<filler>+``) and a loop of single phones (the
textbook garbage model) both made decoding many times slower than real time; a phone-loop
likelihood ratio separated right from wrong worse than the word filler did.

Utterances are always decoded whole (``full_utt``), so the cepstral mean is the question's own,
and every decode starts with fresh noise statistics (``start_stream``): the model's feature
settings turn on pocketsphinx's noise removal, whose noise estimate otherwise carries from one
utterance into the next, so the answer to a question depended on the question asked before it
(4 of 85 bench questions in 10 dB white noise changed with what came first).
A decoder is not thread-safe; one lock serialises the (fast: about 0.09 s of CPU per second of
audio on a busy core) decodes. They run in a child process (``voice.sphinx_worker``): the binding
holds the interpreter lock for a whole decode, which stopped every other thread of the hub.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import shutil
import tempfile
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

from pocketsphinx import Decoder, NGramModel, get_model_path

from voice.engine import EngineError, GrammarSpec, Repair
from voice.languages import language as language_named
from voice.pronounce import (
    ACCENTS,
    PronunciationUnavailable,
    guess_arpabet,
    guess_arpabet_all,
    same_consonants,
)
from voice.sphinx_worker import DecoderProcess
from voice.trim import trim_quiet

#: How often a partial result is recomputed while streaming, in seconds of new audio: at least
#: this, and at least ``PARTIAL_GROWTH`` of the audio so far (see ``_BufferedStream``).
PARTIAL_EVERY_S = 0.5
PARTIAL_GROWTH = 0.5
#: Decoder settings, measured on the demo catalogue (33 questions, 8 voices, CPU time):
#: - ``bestpath`` off: pocketsphinx's default lattice rescoring made grammar decoding slow, and
#:   slowest on noisy audio (a large lattice of filler-word exits): real-time factor 0.23 -> 0.04
#:   with a faint noise floor and 1.16 -> 0.06 at 10 dB white noise, top-1 the same or better.
#: - beams wider than the defaults (1e-48, 7e-29, 1e-48): a name that begins like another
#:   ("oatly oat milk" beside "oat milk") had every complete path pruned before the end, and the
#:   decoder returned nothing. Wider beams fix that: top-1 89 -> 96 % clean and 48 -> 56 % at
#:   10 dB white, for a real-time factor of about 0.06 clean and 0.11 at 10 dB.
#: - the word-exit beam (``wbeam``) narrower than the others: 1e-60 -> 1e-40 kept every top-1
#:   on held-out questions (81 products, 30 off-catalogue, faint floor and 10 dB pink and white,
#:   noise suppressed) and cut CPU time per audio second 0.081 -> 0.072 clean and 0.130 ->
#:   0.092 in white noise; 1e-32 lost 1-3 questions in noise.
#: - once the quiet lead-in and tail are cut before decoding (``voice.trim``), the path and
#:   phone beams could come back to 1e-60: the same held-out top-1 (0.963 faint floor, 0.815 at
#:   10 dB white) for a fifth less CPU time (0.080 -> 0.063 s per audio second, faint floor).
#: - ``fsgusealtpron`` off (each word's first pronunciation only): with the log-spectral
#:   amplitude noise suppression, 243 questions per condition (bench and held-out sets): top-1
#:   at 10 dB white 0.778 -> 0.827, faint floor and 10 dB pink one question better, false
#:   accepts one or two of 62 more, CPU time 5-13 % less. The alternates are mostly other
#:   forms of short words ("the" as DH IY, "for" as F ER, "where" as HH W EH R) that give noise
#:   more ways to match; a store's own pronunciation of a word (``voice.pronunciations``)
#:   replaces the dictionary's.
#: - at most 2,000 active HMMs a frame (``maxhmmpf``, default 30,000; beyond it the decoder
#:   tightens its beam for that frame): noise keeps many filler paths alive. Bench and held-out
#:   questions (162 asked, 46 off-catalogue, 8 voices, a scratch run): the same answers to
#:   every question asked (one held-out false accept fewer in white noise), CPU time per audio
#:   second 0.033 -> 0.030 faint floor, 0.051 -> 0.045 at 10 dB pink, 0.048 -> 0.042 at 10 dB
#:   white; with the demo catalogue plus 250 made-up products the same answers. 1,500 lost a
#:   question, 1,000 one per condition.
DECODER_SETTINGS = {
    "bestpath": False,
    "beam": 1e-60,
    "wbeam": 1e-40,
    "pbeam": 1e-60,
    "fsgusealtpron": False,
    "maxhmmpf": 2000,
}
#: The free-form search's name (the language model's), beside the catalogue grammars'.
FREE_SEARCH = "free"
#: How many of the language model's most frequent words are kept as filler candidates.
COMMON_WORDS = 2000
#: An accent's pronunciation of a word is a dictionary word of its own, the word and a number
#: ("banana_1"): grammar words never hold "_" (``voice.grammar``), and transcripts drop it.
_VARIANT = re.compile(r"_\d+\b")


class PocketsphinxEngine:
    """A pocketsphinx decoder with a free-form language model and catalogue grammars."""

    name = "pocketsphinx"

    def __init__(
        self,
        model_dir: Path | None = None,
        dictionary: Path | None = None,
        language: str = "en",
        filler_weight: float = 1e-6,
        max_fillers: int = 100,
        accents: Sequence[str] = (),
    ) -> None:
        default = Path(get_model_path()) / "en-us"
        hmm = model_dir or default / "en-us"
        dict_path = dictionary or default / "cmudict-en-us.dict"
        lm = default / "en-us.lm.bin"
        for path, what in ((hmm, "acoustic model folder"), (dict_path, "dictionary")):
            if not path.exists():
                raise EngineError(f"pocketsphinx {what} {path} does not exist")
        for accent in accents:
            if accent not in ACCENTS:
                raise EngineError(
                    f"unknown accent {accent!r}: one of {', '.join(ACCENTS)} (espeak-ng voices)"
                )
        if accents and shutil.which("espeak-ng") is None:
            raise EngineError(
                f"listening for the accents {', '.join(accents)} needs espeak-ng to say the "
                "catalogue's words in them: install it (sudo apt-get install espeak-ng) or "
                "listen without accents"
            )
        self.accents = tuple(accents)
        self._accent_phones: dict[tuple[str, str], str] = {}
        self._hmm, self._dict, self._lm = hmm, dict_path, lm
        self._added: dict[str, str] = {}
        self._retired: list[str] = []  # searches whose handles are gone, to be removed
        self._workdir = tempfile.TemporaryDirectory(prefix="voice-dict-")
        self._decoder = self._load(dict_path)  # for the vocabulary: decoding is the child's
        self._worker = DecoderProcess(hmm, DECODER_SETTINGS)
        self._worker.load(dict_path, {})
        self.language = language
        self.sample_rate = int(self._decoder.config["samprate"])
        self.filler_weight = filler_weight
        self.max_fillers = max_fillers
        self._lock = threading.Lock()
        self._names = itertools.count()

    def _load(self, dictionary: Path) -> Decoder:
        try:
            return Decoder(
                hmm=str(self._hmm),
                dict=str(dictionary),
                lm=None,  # loaded only for free-form decoding (the bench's baseline), see there
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
        """The most frequent words of the language model, then the language's shop words the
        dictionary knows, minus ``taken`` and any word that sounds exactly like one of them."""
        common = self._common_words
        shop = language_named(self.language).shop_fillers()[0]
        with self._lock:
            lookup = self._decoder.lookup_word
            banned = {lookup(w) for w in taken} | {None}  # None: not in the dictionary

            def free(word: str) -> bool:
                return word not in taken and lookup(word) not in banned

            frequent = [w for w in common if free(w)][: self.max_fillers]
            return tuple(dict.fromkeys([*frequent, *filter(free, shop)]))

    @functools.cached_property
    def _common_words(self) -> tuple[str, ...]:
        """Dictionary words ranked by their unigram probability in the language model.

        Computed once, on first use (about 0.6 s: the grammar is built on the voice service's
        threads, never on the event loop). Single letters are left out: as filler they fit any
        short sound, including the first syllable of a product name.
        """
        model = NGramModel.readfile(str(self._lm))
        words = {
            word
            for line in self._dict.read_text(encoding="utf-8").splitlines()
            if (word := line.split(" ", 1)[0]).isalpha() and len(word) > 1
        }
        ranked = sorted(words, key=lambda w: (-model.prob([w]), w))
        return tuple(ranked[:COMMON_WORDS])

    def compile(self, grammar: GrammarSpec) -> str:
        """Add the grammar's new words to the dictionary and register a JSGF search; returns
        its handle, which keeps the search registered for as long as anything holds it.

        Why the handle: each search holds about 8 MB, and all were kept, so a store whose
        prices were imported hourly grew by gigabytes over weeks (a catalogue import, a
        chain's ``catalog.update`` and the check for imports by other processes each rebuild).
        A search goes once its handle is gone (a question under way keeps the old grammar's
        alive); it is removed at the next compile or decode, under the decoder's lock, since
        the garbage collector may let go of the handle on any thread, the decoding one too.
        """
        self._remove_retired()
        name = f"catalog{next(self._names)}"
        variants = self.accent_variants(grammar)
        grammar = dataclasses.replace(
            grammar,
            pronunciations=grammar.pronunciations
            + tuple(
                (f"{word}_{i}", phones)
                for word, each in variants.items()
                for i, phones in enumerate(each, 1)
            ),
        )
        jsgf = to_jsgf(grammar, self.filler_weight, {w: len(v) for w, v in variants.items()})
        with self._lock:
            new = {w: p for w, p in grammar.pronunciations if self._added.get(w) != p}
            if new:
                # Words added to a live decoder break its grammar searches ("final result does
                # not match the grammar"), so the decoder is reloaded with a merged dictionary.
                self._added.update(new)
                merged = Path(self._workdir.name) / "dictionary.dict"
                # An added word the dictionary already has (a store's own pronunciation of it)
                # replaces its entries: pocketsphinx keeps the first of two entries for a word.
                kept = [
                    line
                    for line in self._dict.read_text(encoding="utf-8").splitlines()
                    if line.split(" ", 1)[0].split("(", 1)[0] not in self._added
                ]
                extra = [f"{w} {p}" for w, p in sorted(self._added.items())]
                merged.write_text("\n".join([*kept, *extra]) + "\n", encoding="utf-8")
                self._decoder = self._load(merged)
                self._worker.load(merged, self._worker.searches)
            try:
                self._worker.add(name, jsgf)
            except EngineError as exc:
                raise EngineError(f"pocketsphinx rejected the catalogue grammar: {exc}") from exc
        handle = _Grammar(name)
        weakref.finalize(handle, self._retired.append, name)
        return handle

    def _remove_retired(self) -> None:
        """Remove the searches whose handles are gone (see :meth:`compile`). One may be the
        decoder's active search: every decode activates its own first, and nothing here may
        ask for ``current_search()`` (pocketsphinx 5 crashes on it after its search went)."""
        if not self._retired:
            return
        with self._lock:
            while self._retired:
                self._worker.remove(self._retired.pop())

    def accent_variants(self, grammar: GrammarSpec) -> dict[str, list[str]]:
        """Each product word's pronunciations in the store's accents that differ from the one
        the grammar uses, when they keep its consonants in their order.

        Why: the CMU dictionary is American, so espeak-ng's British voice asking for "banana"
        (B AH N AA N AH), "cabbage" or "valio" was heard as "doughnuts", "cottage" or "oat
        milk". The store's own pronunciations (``voice.pronunciations``) are kept as given.
        Variants with other consonants are left out: accents differ mostly in vowels, and such
        variants were what off-catalogue questions matched (American "batteries", flapped, as
        British "mandarin"). Figures in voice/README.md.
        """
        if not self.accents:
            return {}
        given = dict(grammar.pronunciations)
        words = sorted({w for p in grammar.products for w in p} - set(grammar.store_pronounced))
        for accent in self.accents:
            new = [w for w in words if (accent, w) not in self._accent_phones]
            guessed = guess_arpabet_all(new, accent)  # espeak-ng is there: checked at start
            self._accent_phones.update(((accent, w), p) for w, p in guessed.items())
        with self._lock:
            first = {w: given.get(w) or self._decoder.lookup_word(w) for w in words}
        variants: dict[str, list[str]] = {}
        for word in words:
            for accent in self.accents:
                phones = self._accent_phones[accent, word]
                seen = [first[word], *variants.get(word, [])]
                if (
                    phones
                    and first[word]
                    and phones not in seen
                    and same_consonants(phones, first[word])
                ):
                    variants.setdefault(word, []).append(phones)
        return variants

    def decode(self, compiled: object, pcm: bytes) -> str:
        self._remove_retired()
        # Only the words are decoded under a grammar: the quiet lead-in and tail cost time and
        # invite filler words (see voice.trim; Vosk, by contrast, needs them).
        pcm = trim_quiet(pcm, self.sample_rate)
        with self._lock:
            return self._decode_trimmed(compiled, pcm)

    def decode_if_free(self, compiled: object, pcm: bytes) -> str | None:
        """:meth:`decode`, or None at once when the decoder is busy with another question."""
        pcm = trim_quiet(pcm, self.sample_rate)
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._decode_trimmed(compiled, pcm)
        finally:
            self._lock.release()

    def _decode_trimmed(self, compiled: object, pcm: bytes) -> str:
        return _VARIANT.sub("", self._worker.decode(str(compiled), pcm))

    def decode_free(self, pcm: bytes) -> str:
        """Free-form recognition with the package's language model, added on first use.

        Why not loaded with the decoder: the product decodes only catalogue grammars, and the
        language model held 63 MB of a hub's memory (pocketsphinx 5: 103 MB loaded with it,
        40 MB without); only the bench's free-form baseline needs it."""
        with self._lock:
            if not self._worker.has_language_model:  # none yet, or a decoder reloaded since
                self._worker.add_language_model(FREE_SEARCH, self._lm)
            return _VARIANT.sub("", self._worker.decode(FREE_SEARCH, pcm))

    def close(self) -> None:
        """Stop the decoding process (it also stops with the hub, or when the engine is
        dropped)."""
        self._worker.close()

    def stream(self, compiled: object) -> _BufferedStream:
        return _BufferedStream(self, compiled)


class _Grammar:
    """A registered catalogue search, alive while this handle is (``compile``)."""

    __slots__ = ("name", "__weakref__")

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return self.name


class _BufferedStream:
    """Streaming on top of whole-utterance decoding: partials re-decode the audio so far.

    Why partials grow apart and give way: each re-decodes the whole question, so at a fixed
    interval a question cost the square of its length (9.6 s of noisy speech: 2.9 CPU seconds
    streamed against 0.4 uploaded), and every decode held the one decoder, so four kiosks
    queued behind each other's partials: on a starved CPU the answer came half a minute after
    the customer stopped (found by a slow-hardware check). Partials now come after at least
    half as much new audio as there was (a geometric series: the total stays a small multiple
    of one decode) and are skipped, keeping the last one, while another question decodes."""

    def __init__(self, engine: PocketsphinxEngine, compiled: object) -> None:
        self._engine = engine
        self._compiled = compiled
        self._audio = bytearray()
        self._since = 0
        self._partial = ""

    def accept(self, pcm: bytes) -> str:
        self._audio.extend(pcm)
        self._since += len(pcm)
        every = max(PARTIAL_EVERY_S * self._engine.sample_rate * 2,
                    PARTIAL_GROWTH * (len(self._audio) - self._since))
        if self._since >= every:
            partial = self._engine.decode_if_free(self._compiled, bytes(self._audio))
            if partial is not None:
                self._since = 0
                self._partial = partial
        return self._partial


def to_jsgf(
    grammar: GrammarSpec, filler_weight: float, variants: Mapping[str, int] | None = None
) -> str:
    """The JSGF text for ``grammar``; the filler alternative is weighted against the products.
    A product word with ``variants`` (how many) is said as itself or any of them ("banana_1").
    """
    said = {
        word: f"({' | '.join([word, *(f'{word}_{i}' for i in range(1, n + 1))])})"
        for word, n in (variants or {}).items()
    }
    products = [tuple(said.get(w, w) for w in phrase) for phrase in grammar.products]

    item = "<product>"
    if grammar.fillers:
        item = f"/1/ <product> | /{filler_weight:g}/ <filler>"
    optional = {
        "before": factored(grammar.before),
        "article": " | ".join(grammar.articles),
        "particle": " | ".join(grammar.particles),
        "after": factored(grammar.after),
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
        f"<product> = {factored(products)};",
        *(f"<{rule}> = {body};" for rule, body in optional.items() if body),
    ]
    if grammar.fillers:
        rules.append(f"<filler> = {' | '.join(grammar.fillers)};")
    return "\n".join(rules) + "\n"


def factored(phrases: Sequence[tuple[str, ...]]) -> str:
    """JSGF alternatives of ``phrases`` with shared leading words said once: ``golden delicious
    (apple | apples) | apple | apples``; the same phrases, in order of first appearance.

    Why: pocketsphinx turns each alternative into its own chain of states, so "golden delicious
    apple" and "golden delicious apples" were searched as two copies of "golden delicious".
    Sharing the prefix leaves one copy for the decoder to keep alive.
    """
    groups: dict[str, list[tuple[str, ...]]] = {}
    for phrase in phrases:
        if phrase:
            groups.setdefault(phrase[0], []).append(phrase[1:])
    parts = []
    for word, rests in groups.items():
        longer = [rest for rest in rests if rest]
        if not longer:
            parts.append(word)
        elif len(longer) < len(rests):  # the word alone is a phrase too
            parts.append(f"{word} [{factored(longer)}]")
        elif len({rest[0] for rest in longer}) == 1:  # one way on: no group needed
            parts.append(f"{word} {factored(longer)}")
        else:
            parts.append(f"{word} ({factored(longer)})")
    return " | ".join(parts)
