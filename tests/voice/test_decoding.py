"""Real decoding with both real models on questions spoken by espeak-ng: clean (faint noise
floor), noisy, off-catalogue, other sample rates and channel counts, and streaming."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tests.voice.conftest import ENGLISH_CATALOG
from voice.audio import Audio, resample, to_pcm16
from voice.languages import ENGLISH
from voice.matcher import CatalogEntry
from voice.search import VoiceSearch
from voice.sphinx import PocketsphinxEngine
from voice.synthesis import to_wav

ENGLISH_QUESTIONS = [
    ("where can I find oat milk", "GS-045"),
    ("do you have bananas", "GS-006"),
    ("I'm looking for carrots", "GS-062"),
    ("where is the pineapple", "GS-023"),
    ("do you sell sweet potato", "GS-075"),
    ("where can I find red bell pepper", "GS-071"),
    ("watermelon please", "GS-014"),
    ("do you have garlic", "GS-064"),
]
OFF_CATALOGUE = [
    "where can I find the toilets",
    "do you sell batteries",
    "I'm looking for dog food",
    "where is the chocolate",
]
KOREAN_CARRIERS = ("{} 어디 있어요", "{} 있어요", "{} 주세요", "{} 어디에 있나요")


def _top(search: VoiceSearch, audio: Audio, channels: int = 1) -> str | None:
    answer = search.answer_wav(to_wav(audio, channels))
    return answer.results[0].sku if answer.results else None


def test_english_questions_with_a_faint_noise_floor(
    english_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    for voice in ("espeak-ng:en-us", "espeak-ng:en-gb"):
        hits = [_top(english_search, say(text, voice)) == sku for text, sku in ENGLISH_QUESTIONS]
        assert sum(hits) >= len(hits) - 2, (voice, hits)


BRITISH_CATALOG = [
    *ENGLISH_CATALOG,
    CatalogEntry("GS-070", {"en": "Cabbage"}),
    CatalogEntry("GS-015", {"en": "Cantaloupe Melon"}),
    CatalogEntry("GS-057", {"en": "Valio Vanilla Yoghurt"}),
]
BRITISH_QUESTIONS = [
    ("where is the banana", "GS-006"),
    ("do you have cabbage", "GS-070"),
    ("where can I find cantaloupe melon", "GS-015"),
    ("where is the valio vanilla yoghurt", "GS-057"),
    ("where are the tomatoes", "GS-079"),
]


def test_a_british_accent_is_heard_when_the_store_names_it(
    sphinx: PocketsphinxEngine, say: Callable[..., Audio]
) -> None:
    """Why: the dictionary is American; espeak-ng's British voice asking for these was heard as
    "doughnuts", "cottage", "tonic", "oatly oat milks" and "mop please" (voice.engine.accents).
    """
    plain = VoiceSearch(sphinx, BRITISH_CATALOG, ENGLISH)
    accented = VoiceSearch(PocketsphinxEngine(accents=("en-gb",)), BRITISH_CATALOG, ENGLISH)
    for voice, search, least in (
        ("espeak-ng:en-gb", accented, 5),
        ("espeak-ng:en-us", accented, 5),
        ("espeak-ng:en-gb", plain, 0),
    ):
        answers = [search.answer_wav(to_wav(say(text, voice))) for text, _ in BRITISH_QUESTIONS]
        hits = sum(
            bool(a.results) and a.results[0].sku == sku
            for a, (_, sku) in zip(answers, BRITISH_QUESTIONS, strict=True)
        )
        transcripts = [a.transcript for a in answers]
        if search is plain:
            assert hits <= 2, transcripts  # what the accent setting is for
        else:
            assert hits >= least, (voice, transcripts)
            assert not any("_" in t for t in transcripts), transcripts


def test_answer_lists_results_and_strips_the_question(
    english_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    answer = english_search.answer_wav(to_wav(say("where can I find carrots")))
    assert answer.in_store and answer.results[0].sku == "GS-062"
    assert "where" in answer.transcript and "where" not in answer.heard
    scores = [result.score for result in answer.results]
    assert len(scores) <= english_search.settings.results
    assert scores == sorted(scores, reverse=True), "ranked best first"
    assert len({result.sku for result in answer.results}) == len(scores), "no product twice"
    assert answer.to_json()["results"][0]["sku"] == "GS-062"


def test_english_questions_at_10_db_pink_and_white_noise(
    english_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    for noise in ("pink", "white"):
        hits = [
            _top(english_search, say(text, snr_db=10, noise=noise, seed=i)) == sku
            for i, (text, sku) in enumerate(ENGLISH_QUESTIONS)
        ]
        assert sum(hits) >= len(hits) - 2, (noise, hits)


def test_off_catalogue_questions_are_mostly_not_in_store(
    english_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    answers = [english_search.answer_wav(to_wav(say(text))) for text in OFF_CATALOGUE]
    rejected = [not a.in_store for a in answers]
    assert sum(rejected) >= 2, [(a.transcript, a.results) for a in answers]


def test_shop_things_of_two_words_are_not_taken_for_a_product(
    english_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    """With one-word fillers only, each of these was heard as a product ("where is the oatly
    oat milk", "where are the potatoes")."""
    answers = [
        english_search.answer_wav(to_wav(say(text, voice)))
        for text in ("where is the peanut butter", "where are the paper towels")
        for voice in ("espeak-ng:en-us", "espeak-ng:en-gb")
    ]
    rejected = [not a.in_store for a in answers]
    assert sum(rejected) >= 3, [(a.transcript, a.results) for a in answers]


def test_grocery_things_the_store_does_not_sell_are_heard_as_themselves(
    english_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    """With the shorter shop list, "have you got mozzarella" was "have you got a watermelon" and
    the others were heard as stray words ("do you have getting", "i need any food")."""
    things = ("mozzarella", "blueberries", "fish fingers", "baby food")
    answers = [
        english_search.answer_wav(to_wav(say(f"{carrier} {thing}", voice)))
        for carrier, thing in zip(
            ("have you got", "where are the", "do you have", "i need"), things, strict=True
        )
        for voice in ("espeak-ng:en-us", "espeak-ng:en-gb")
    ]
    assert all(not a.in_store for a in answers), [(a.transcript, a.results) for a in answers]
    named = [any(thing in a.transcript for thing in things) for a in answers]
    assert sum(named) >= 6, [a.transcript for a in answers]


def test_an_answer_does_not_depend_on_the_question_before(
    english_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    """pocketsphinx's noise removal carries its estimate from one utterance into the next: this
    noisy question was heard as "do you have an up" first and "do you have enough" after another."""
    noisy = to_wav(say("do you have carrots", "espeak-ng:en-us+f3", snr_db=5))
    first = english_search.answer_wav(noisy).transcript
    english_search.answer_wav(to_wav(say("where is the oat milk")))
    assert english_search.answer_wav(noisy).transcript == first


def test_other_rates_and_channel_counts_decode_the_same(
    english_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    for rate, channels in ((44_100, 2), (48_000, 1), (22_050, 2)):
        assert _top(english_search, say("do you have bananas", rate=rate), channels) == "GS-006"


def test_streaming_gives_partials_and_the_same_final_answer(
    english_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    audio = say("I'm looking for carrots")
    pcm = to_pcm16(audio.samples)
    stream = english_search.stream()
    partials = [stream.accept(pcm[i : i + 6_400]) for i in range(0, len(pcm), 6_400)]
    answer = stream.finish()
    assert any(partials) and answer.results[0].sku == "GS-062"


def test_a_long_stream_re_decodes_little_and_gives_way_to_another_question(
    sphinx: PocketsphinxEngine, english_search: VoiceSearch, say: Callable[..., Audio],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Why: every partial re-decoded the whole question every 0.5 s, a cost growing with the
    square of its length, and held the one decoder, so kiosks queued behind each other's
    partials (a customer on a starved Pi waited half a minute after speaking)."""
    decoded: list[float] = []
    real = sphinx.decode_if_free

    def counted(compiled: object, pcm: bytes) -> str | None:
        decoded.append(len(pcm) / 2 / sphinx.sample_rate)
        return real(compiled, pcm)

    monkeypatch.setattr(sphinx, "decode_if_free", counted)
    pcm = to_pcm16(say("I'm looking for carrots").samples)
    pause = bytes(2 * sphinx.sample_rate * 4)
    pcm = pause + pcm + pause  # a ten-second recording: the kiosk started early, stopped late
    stream = english_search.stream()
    for i in range(0, len(pcm), 3_200):  # 0.1 s frames, as a kiosk sends them
        stream.accept(pcm[i : i + 3_200])
    seconds = len(pcm) / 2 / sphinx.sample_rate
    assert sum(decoded) < 3 * seconds, decoded  # a fixed 0.5 s interval decoded ~10 times it
    assert stream.finish().results[0].sku == "GS-062"
    # while another question holds the decoder, a partial is skipped, not waited for
    busy = english_search.stream()
    with sphinx._lock:
        answered = [busy.accept(pcm[i : i + 3_200]) for i in range(0, 64_000, 3_200)]
    assert answered == [""] * len(answered)


def test_a_noisy_stream_is_answered_as_its_upload(
    english_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    """In noise RNNoise cleans a stream as it arrives; the final answer is the upload's."""
    for text, noise in (("where is the oat milk", "white"), ("I'm looking for carrots", "pink")):
        pcm = to_pcm16(say(text, snr_db=10, noise=noise).samples)
        stream = english_search.stream()
        assert stream._denoiser is not None  # make setup installs RNNoise's library
        for i in range(0, len(pcm), 3_202):  # 1,601 samples: no piece is a whole frame
            stream.accept(pcm[i : i + 3_202])
        streamed, uploaded = stream.finish(), english_search.answer_pcm(pcm)
        assert streamed.transcript == uploaded.transcript and streamed.transcript
        assert [m.sku for m in streamed.results] == [m.sku for m in uploaded.results]


def test_korean_questions_with_the_korean_model(
    korean_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    """Every product of the test catalogue asked by two espeak-ng voices. Heard twice (the
    speaker vector and normalisation adapted to the whole question) 18 of 24 came out right
    when measured; heard once, 15."""
    hits = [
        _top(korean_search, say(KOREAN_CARRIERS[i % 4].format(entry.names["ko"]), voice))
        == entry.sku
        for voice in ("espeak-ng:ko", "espeak-ng:ko+f3")
        for i, entry in enumerate(ENGLISH_CATALOG)
    ]
    assert sum(hits) >= 17, hits


def test_korean_streaming_through_vosk(
    korean_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    audio = say("바나나 어디 있어요", "espeak-ng:ko")
    stream = korean_search.stream()
    pcm = to_pcm16(audio.samples)
    for i in range(0, len(pcm), 3_200):
        stream.accept(pcm[i : i + 3_200])
    assert stream.finish().results[0].sku == "GS-006"


def test_8_khz_input_is_upsampled_not_rejected(
    english_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    audio = say("do you have bananas")
    narrow = Audio(resample(audio.samples, 16_000, 8_000), 8_000)
    answer = english_search.answer_wav(to_wav(narrow))
    assert answer.transcript  # telephone-band audio still decodes; accuracy is lower by nature
    assert np.isfinite(answer.ms)


def test_a_name_that_begins_like_another_still_decodes(
    english_search: VoiceSearch, say: Callable[..., Audio]
) -> None:
    # "Oatly Oat Milk" beside the alias "oat milk": with pocketsphinx's default beams every
    # complete path was pruned and the transcript came back empty.
    answer = english_search.answer_wav(to_wav(say("where can I find oat milk", "espeak-ng:en-gb")))
    assert answer.transcript and answer.results[0].sku == "GS-045", answer


SHELF_LABELS = [
    CatalogEntry("L-1", {"en": "Coca-Cola 330ml Can"}),
    CatalogEntry("L-2", {"en": "Free-range Eggs x12"}),
    CatalogEntry("L-3", {"en": "Ben & Jerry's Cookie Dough"}),
    CatalogEntry("L-4", {"en": "Häagen-Dazs Vanilla Ice Cream 460 ml"}),
    CatalogEntry("L-5", {"en": "100% Orange Juice 1.5 L"}),
    CatalogEntry("L-6", {"en": "Heinz Beanz 4x415g"}),
    CatalogEntry("L-7", {"en": "Bananas Loose"}),
    CatalogEntry("L-8", {"en": "Yorkshire Tea 160 Bags"}),
    CatalogEntry("L-9", {"en": "Birds Eye 10 Fish Fingers"}),
]
SAID_OF_LABELS = [
    ("where is the coca cola", "L-1"),
    ("do you have free range eggs", "L-2"),
    ("do you have ben and jerry's cookie dough", "L-3"),
    ("where is the haagen dazs vanilla ice cream", "L-4"),
    ("where can I find orange juice", "L-5"),
    ("do you sell heinz beanz", "L-6"),
    ("where can I find bananas", "L-7"),
    ("do you have yorkshire tea", "L-8"),
    ("where are the birds eye fish fingers", "L-9"),
]


def test_shelf_label_names_are_found_as_customers_say_them(
    sphinx: PocketsphinxEngine, say: Callable[..., Audio]
) -> None:
    """Why: a name with a pack size, a count, a symbol or a label's own word ("Coca-Cola 330ml
    Can", "Yorkshire Tea 160 Bags", "Ben & Jerry's", "Bananas Loose") was only in the grammar as
    written, so "where is the coca cola" or "where can I find bananas" had no complete path and
    came back empty, and "&" was dropped from a phrase no one says."""
    search = VoiceSearch(sphinx, SHELF_LABELS, ENGLISH)
    for voice in ("espeak-ng:en-us", "espeak-ng:en-gb"):
        answers = [search.answer_wav(to_wav(say(text, voice))) for text, _ in SAID_OF_LABELS]
        hits = [
            bool(a.results) and a.results[0].sku == sku
            for a, (_, sku) in zip(answers, SAID_OF_LABELS, strict=True)
        ]
        assert sum(hits) >= len(hits) - 1, [(voice, a.transcript) for a in answers]


def test_free_form_recognition_loads_its_language_model_when_first_asked(
    say: Callable[..., Audio],
) -> None:
    """The bench's free-form baseline: the language model is not held by a hub that decodes only
    catalogue grammars (63 MB), and is added again after a rebuild replaced the decoder."""
    engine = PocketsphinxEngine()
    search = VoiceSearch(engine, ENGLISH_CATALOG, ENGLISH)
    pcm = to_pcm16(say("do you have bananas").samples)
    assert "banana" in engine.decode_free(pcm)
    rebuilt = [*ENGLISH_CATALOG, CatalogEntry("ZX-1", {"en": "Zorbulax Crisps"})]
    VoiceSearch(engine, rebuilt, ENGLISH)  # a word the dictionary lacks: a new decoder
    assert "banana" in engine.decode_free(pcm)
    assert search.answer_pcm(pcm).results[0].sku == "GS-006"
