"""The vocabulary check: every grammar word is known to the model, or repaired and reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from voice.audio import Audio
from voice.engine import EngineError
from voice.engines import open_engine
from voice.grammar import build_grammar, english_plural, plural_phones
from voice.languages import ENGLISH, KOREAN, segment
from voice.matcher import CatalogEntry
from voice.pronounce import guess_arpabet, guess_arpabet_all
from voice.search import VoiceSearch
from voice.sphinx import PocketsphinxEngine, factored, to_jsgf
from voice.synthesis import to_wav
from voice.vosk_engine import ACOUSTIC_SCALE, VoskEngine, _with_acoustic_scale
from voice.vosk_model import ModelLayoutError, packaged_korean_model, vocabulary


def test_planted_missing_english_word_is_reported_with_a_pronunciation(
    sphinx: PocketsphinxEngine,
) -> None:
    entries = [CatalogEntry("X-1", {"en": "Zorblax Oat Milk"}), CatalogEntry("X-2", {"en": "Kiwi"})]
    grammar = build_grammar(entries, sphinx, ENGLISH)
    missing = {m.word: m for m in grammar.report.missing}
    assert set(missing) == {"zorblax"}
    planted = missing["zorblax"]
    assert planted.skus == ("X-1",) and planted.text == "Zorblax Oat Milk"
    assert planted.repair is not None and planted.repair.kind == "pronunciation"
    assert planted.repair.value.split()[0] == "Z"
    assert "voice.pronunciations.zorblax" in planted.suggestion
    assert ("zorblax", "oat", "milk") in grammar.spec.products
    assert dict(grammar.spec.pronunciations)["zorblax"] == planted.repair.value


def test_a_pack_size_is_said_as_written_and_not_reported(sphinx: PocketsphinxEngine) -> None:
    """Why: every "330ml" or "4x415g" in a catalogue was reported as a missing word asking the
    staff for phones, and `voice check` failed on it, though its guessed pronunciation reads
    the number aloud and the name is heard without the size too."""
    # a size no other test uses: the session's engine keeps words it was given once
    entries = [CatalogEntry("C", {"en": "Zorblax Cola 337ml"})]
    grammar = build_grammar(entries, sphinx, ENGLISH)
    assert {m.word for m in grammar.report.missing} == {"zorblax"}
    assert ("zorblax", "cola", "337ml") in grammar.spec.products
    phones = dict(grammar.spec.pronunciations)["337ml"]
    assert phones.startswith("TH R IY"), phones  # "three hundred and thirty-seven ..."


def test_store_pronunciation_replaces_the_dictionarys_for_a_known_word(
    say: Callable[..., Audio],
) -> None:
    """pocketsphinx keeps the first entry of a word, so a store's pronunciation of a word the
    dictionary has was silently ignored. Here "garlic" is given the phones of "banana": a
    question about bananas must now be heard as garlic. A fresh engine, since the override
    stays with the engine."""
    engine = open_engine("pocketsphinx")
    entries = [CatalogEntry("G", {"en": "Garlic"}), CatalogEntry("C", {"en": "Carrots"})]
    search = VoiceSearch(engine, entries, ENGLISH, pronunciations={"garlic": "B AH N AE N AH"})
    answer = search.answer_wav(to_wav(say("do you have banana")))
    assert [m.sku for m in answer.results][:1] == ["G"], answer.transcript


def test_pronunciations_are_guessed_in_an_accent_many_words_at_a_time() -> None:
    guessed = guess_arpabet_all(["banana", "oatly", "valio", "hello, world", "banana"], "en-gb")
    assert guessed["banana"] == "B AH N AA N AH"  # the British vowel, not the CMU's AE
    assert guessed["oatly"] == "OW T L IY"  # British "əʊ" is the same phoneme as American "oʊ"
    assert guessed["valio"] == "V AE L IY OW"
    assert guessed["hello, world"].startswith("HH")  # two lines from espeak-ng: asked alone
    assert guess_arpabet("banana") == "B AH N AE N AH"  # American by default


def test_accent_variants_differ_in_vowels_and_spare_the_stores_pronunciations(
    sphinx: PocketsphinxEngine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Why: the CMU dictionary is American, so espeak-ng's British voice asking for a banana
    was heard as "doughnuts"; a British pronunciation with other consonants ("mandarin" as M AE
    N D AH R IH N) matched off-catalogue questions, and a store's own pronunciation is final."""
    accented = PocketsphinxEngine(accents=("en-gb",))
    entries = [
        CatalogEntry("X-1", {"en": "Banana"}),
        CatalogEntry("X-2", {"en": "Mandarins"}),
        CatalogEntry("X-3", {"en": "Arla Tomato"}),
    ]
    grammar = build_grammar(entries, accented, ENGLISH, {"tomato": "T AH M EY T OW"})
    variants = accented.accent_variants(grammar.spec)
    assert variants["banana"] == ["B AH N AA N AH"]
    assert "mandarins" not in variants and "tomato" not in variants
    assert "tomatoes" not in variants  # the plural of a word the store pinned is pinned too
    assert dict(grammar.spec.pronunciations)["tomatoes"] == "T AH M EY T OW Z"  # and said so
    assert plural_phones("P IY CH") == "P IY CH IH Z" and plural_phones("K AE T") == "K AE T S"
    assert sphinx.accent_variants(grammar.spec) == {}  # no accents configured
    name = accented.compile(grammar.spec)
    assert accented.knows("banana_1")
    jsgf = to_jsgf(grammar.spec, accented.filler_weight, {"banana": 1})
    assert "(banana | banana_1)" in jsgf and "banana_1" not in to_jsgf(grammar.spec, 1e-6)
    assert str(name).startswith("catalog")
    with pytest.raises(EngineError, match="unknown accent 'british'"):
        PocketsphinxEngine(accents=("british",))
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng: accents cannot be had
    with pytest.raises(EngineError, match="accents en-gb needs espeak-ng"):
        PocketsphinxEngine(accents=("en-gb",))
    with pytest.raises(EngineError, match="accents are for the pocketsphinx engine"):
        open_engine("vosk", packaged_korean_model(), "ko", accents=("en-gb",))


def test_store_pronunciation_overrides_the_guess(sphinx: PocketsphinxEngine) -> None:
    entries = [CatalogEntry("X-1", {"en": "Arla Milk"})]
    grammar = build_grammar(entries, sphinx, ENGLISH, {"Arla": "AA R L AH"})
    assert grammar.report.ok
    assert dict(grammar.spec.pronunciations) == {"arla": "AA R L AH"}


def test_planted_missing_korean_word_is_respelled_and_reported(korean: VoskEngine) -> None:
    entries = [CatalogEntry("K-1", {"ko": "청사과"}), CatalogEntry("K-2", {"ko": "바나나"})]
    grammar = build_grammar(entries, korean, KOREAN)
    missing = {m.word: m for m in grammar.report.missing}
    assert set(missing) == {"청사과"}
    repair = missing["청사과"].repair
    assert repair is not None and repair.kind == "spelling"
    assert all(korean.knows(w) for w in repair.value.split())
    assert tuple(repair.value.split()) in grammar.spec.products
    assert grammar.respellings[repair.value] == "청사과"


def test_korean_brand_is_never_respelled_as_one_syllable_words(korean: VoskEngine) -> None:
    entries = [
        CatalogEntry("K-1", {"ko": "아를라 우유"}),
        CatalogEntry("K-2", {"ko": "칸탈루프 멜론"}),
    ]
    search = VoiceSearch(korean, entries, KOREAN)
    repairs = {m.word: m.repair for m in search.grammar.report.missing}
    assert set(repairs) == {"아를라", "칸탈루프"}
    for word, repair in repairs.items():
        assert repair is not None and repair.kind == "spelling"
        pieces = repair.value.split()
        assert all(korean.knows(p) and len(p) >= 2 for p in pieces), (word, pieces)
        assert search.grammar.respellings[repair.value] == word
    assert repairs["칸탈루프"].value == "칸탈 루프"  # pieces of two syllables are kept
    brand = repairs["아를라"]
    assert brand is not None
    answer = search.interpret(f"{brand.value} 우유 어디 있어요")
    assert [m.sku for m in answer.results][:1] == ["K-1"]
    assert answer.asked == answer.heard == "아를라 우유"  # the respelling is put back


def test_answer_says_what_was_asked_for_without_the_question_words(
    sphinx: PocketsphinxEngine,
) -> None:
    """The kiosk names the thing in its answer ("We could not find “mozzarella”"), so the answer
    carries it even when no product is named."""
    entries = [CatalogEntry("GS-045", {"en": "Oatly Oat Milk"}, {"en": ["oat milk"]})]
    search = VoiceSearch(sphinx, entries, ENGLISH)
    found = search.interpret("where can i find the oat milk please")
    assert (found.asked, found.heard, found.in_store) == ("oat milk", "oat milk", True)
    missing = search.interpret("do you have mozzarella")
    assert (missing.asked, missing.heard, missing.in_store) == ("mozzarella", "", False)
    assert search.interpret("where is the").asked == ""
    unknown = search.interpret("where is [unk] please")  # a Vosk model's unknown-word marker
    assert (unknown.asked, unknown.heard, unknown.in_store) == ("", "", False)
    assert missing.to_json()["asked"] == "mozzarella"


def test_a_product_word_that_is_also_a_question_word_is_dropped_only_where_it_asks(
    sphinx: PocketsphinxEngine,
) -> None:
    """Why: with "Coca-Cola 330ml Can" in the catalogue, "can" counted as a product word
    everywhere, so "where can i find bananas" was read as asking for "can bananas" and "Bananas
    Loose" came back only as "did you mean"."""
    entries = [
        CatalogEntry("C", {"en": "Coca-Cola 330ml Can"}),
        CatalogEntry("B", {"en": "Bananas Loose"}),
    ]
    search = VoiceSearch(sphinx, entries, ENGLISH)
    bananas = search.interpret("where can i find bananas")
    assert (bananas.asked, bananas.in_store, bananas.results[0].sku) == ("bananas", True, "B")
    can = search.interpret("do you have coca cola 330ml can please")
    assert (can.asked, can.results[0].sku) == ("coca cola 330ml can", "C")


def test_vocabulary_is_read_from_the_lookahead_graph(korean: VoskEngine) -> None:
    model = packaged_korean_model()
    assert model is not None
    words = vocabulary(model)
    assert len(words) > 100_000
    sample = words[:: len(words) // 50]
    assert all(korean.knows(w) for w in sample if not w.startswith("#"))
    assert "바나나" in words and "아를라" not in words


def test_vocabulary_of_a_static_graph_is_its_words_file(tmp_path: Path) -> None:
    (tmp_path / "graph").mkdir()
    assert vocabulary(tmp_path) == ()
    (tmp_path / "graph" / "words.txt").write_text("<eps> 0\n사과 1\n\n우유 2\n", encoding="utf-8")
    assert vocabulary(tmp_path) == ("<eps>", "사과", "우유")


def test_damaged_lookahead_graph_is_a_clear_error(tmp_path: Path) -> None:
    model = packaged_korean_model()
    assert model is not None
    (tmp_path / "graph").mkdir()
    fst = tmp_path / "graph" / "Gr.fst"
    fst.write_bytes((model / "graph" / "Gr.fst").read_bytes()[:5000])  # cut inside the word list
    with pytest.raises(ModelLayoutError, match="damaged"):
        vocabulary(tmp_path)
    fst.write_bytes(b"not an fst at all")
    with pytest.raises(ModelLayoutError, match="not an OpenFst file"):
        vocabulary(tmp_path)


def test_unrepairable_word_is_reported_not_dropped_silently(korean: VoskEngine) -> None:
    entries = [CatalogEntry("K-1", {"ko": "바나나 qzxqzv"})]
    grammar = build_grammar(entries, korean, KOREAN)
    (missing,) = grammar.report.missing
    assert missing.word == "qzxqzv" and missing.repair is None
    assert "alias" in missing.suggestion
    assert grammar.spec.products == (("바나나",),)


def test_product_without_a_name_in_the_language_is_listed(korean: VoskEngine) -> None:
    grammar = build_grammar([CatalogEntry("E-1", {"en": "Banana"})], korean, KOREAN)
    assert grammar.report.products_without_name == ("E-1",)


def test_english_grammar_has_carriers_plurals_and_a_filler_path(sphinx: PocketsphinxEngine) -> None:
    grammar = build_grammar([CatalogEntry("B", {"en": "Banana"})], sphinx, ENGLISH)
    assert ("where", "can", "i", "find") in grammar.spec.before
    assert ("bananas",) in grammar.spec.products
    assert grammar.spec.fillers and "banana" not in grammar.spec.fillers
    jsgf = to_jsgf(grammar.spec, 0.01)
    assert "<filler>" in jsgf and "public <query>" in jsgf


def test_english_fillers_are_frequent_and_shop_words_never_sounding_like_a_product(
    sphinx: PocketsphinxEngine,
) -> None:
    banana = build_grammar([CatalogEntry("B", {"en": "Banana"})], sphinx, ENGLISH)
    frequent = banana.spec.fillers[: sphinx.max_fillers]
    assert {"the", "for", "people"} <= set(frequent)
    assert {"flour", "batteries", "toothpaste", "cheese"} <= set(banana.spec.fillers)
    assert len(set(banana.spec.fillers)) == len(banana.spec.fillers), "each word once"
    assert not any(len(word) == 1 for word in banana.spec.fillers)
    pizza = build_grammar([CatalogEntry("P", {"en": "Four Cheese Pizza"})], sphinx, ENGLISH)
    assert "four" in pizza.product_words
    assert "for" not in pizza.spec.fillers, "'for' sounds like 'four' and would swallow it"
    assert not {"cheese", "pizza"} & set(pizza.spec.fillers), "a shop word the store sells"


def test_shop_things_of_several_words_are_filler_phrases_unless_a_name_holds_them(
    sphinx: PocketsphinxEngine,
) -> None:
    banana = build_grammar([CatalogEntry("B", {"en": "Banana"})], sphinx, ENGLISH)
    assert {"peanut butter", "bin bags", "washing up liquid"} <= set(banana.spec.fillers)
    assert {"peanut", "butter", "bags"} <= banana.filler_words, "their words stay fillers too"
    assert "<filler> = " in to_jsgf(banana.spec, 0.01)
    spread = build_grammar(
        [CatalogEntry("S", {"en": "Smooth Peanut Butter"}, {"en": ["bin bags"]})], sphinx, ENGLISH
    )
    assert not {"peanut butter", "bin bags"} & set(spread.spec.fillers), "would swallow it"
    assert "olive oil" in spread.spec.fillers


def test_plurals_and_segmentation() -> None:
    assert [english_plural(w) for w in ("carrot", "peach", "cherry", "tomato", "kiwi")] == [
        "carrots",
        "peaches",
        "cherries",
        "tomatoes",
        "kiwis",
    ]
    vocab = {"燕麦", "奶", "燕"}
    assert segment("燕麦奶", vocab.__contains__) == ["燕麦", "奶"]
    assert segment("牛奶", vocab.__contains__) is None


def test_vosk_model_is_loaded_with_the_grammar_acoustic_scale(tmp_path: Path) -> None:
    installed = tmp_path / "model"
    (installed / "conf").mkdir(parents=True)
    (installed / "am").mkdir()
    (installed / "am" / "final.mdl").write_bytes(b"model")
    (installed / "conf" / "mfcc.conf").write_text("--sample-frequency=16000\n")
    original = "--beam=10.0\n--acoustic-scale=1.0\n--frame-subsampling-factor=3\n"
    (installed / "conf" / "model.conf").write_text(original)
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    view = _with_acoustic_scale(installed, overlay)
    conf = (view / "conf" / "model.conf").read_text().splitlines()
    scale = f"--acoustic-scale={ACOUSTIC_SCALE}"
    assert conf == ["--beam=10.0", "--frame-subsampling-factor=3", scale]
    assert (view / "am" / "final.mdl").read_bytes() == b"model"
    assert (view / "conf" / "mfcc.conf").read_text() == "--sample-frequency=16000\n"
    assert (installed / "conf" / "model.conf").read_text() == original, "installed model unchanged"


def test_jsgf_says_shared_leading_words_once() -> None:
    """Each alternative becomes its own chain of decoder states, so shared beginnings are
    factored out; every phrase stays sayable, including one that begins another."""
    phrases = (
        ("golden", "delicious", "apple"),
        ("golden", "delicious", "apples"),
        ("apple",),
        ("oat", "milk"),
        ("oat", "milk", "barista"),
        ("oat",),
        ("where", "can", "i", "find"),
        ("where", "is"),
    )
    assert factored(phrases) == (
        "golden delicious (apple | apples) | apple | oat [milk [barista]] | where (can i find | is)"
    )
    assert factored((("banana",),)) == "banana"


def test_accented_word_the_dictionary_knows_bare_is_not_guessed(sphinx: PocketsphinxEngine) -> None:
    """Why: "Häagen" and "jalapeño" were guessed from their letters ("HH EH AH JH AH N") although
    the dictionary has "haagen" and "jalapeno"; the answer still spells the catalogue's word."""
    entries = [
        CatalogEntry("A-1", {"en": "Häagen-Dazs Vanilla"}),
        CatalogEntry("A-2", {"en": "Kiwi"}),
    ]
    search = VoiceSearch(sphinx, entries, ENGLISH)
    assert ("haagen", "dazs", "vanilla") in search.grammar.spec.products
    assert not search.grammar.report.missing
    answer = search.interpret("where is the haagen dazs vanilla")
    assert answer.asked == "häagen dazs vanilla" and answer.results[0].sku == "A-1"


def test_a_catalogues_grammar_goes_when_nothing_holds_it_any_more(
    say: Callable[..., Audio],
) -> None:
    """Why: every rebuild left its grammar registered in the decoder, about 8 MB each, so a
    store whose prices were imported hourly grew by gigabytes over weeks."""
    engine = open_engine("pocketsphinx")  # its own: the session's engine is shared
    entries = [CatalogEntry("B-1", {"en": "Banana"}), CatalogEntry("K-1", {"en": "Kiwi"})]
    kept = VoiceSearch(engine, entries, ENGLISH)  # a question under way holds its grammar
    dropped = []
    for n in range(4):  # rebuilds whose grammars nothing holds afterwards
        search = VoiceSearch(engine, entries[: 1 + n % 2], ENGLISH)
        search.answer_wav(to_wav(say("do you have kiwi")))  # the decoder had it active
        dropped.append(str(search._compiled))  # noqa: SLF001
        del search
    newest = VoiceSearch(engine, entries[1:], ENGLISH)
    for name in dropped:
        with pytest.raises(KeyError):  # removed from the decoder
            engine._decoder.activate_search(name)  # noqa: SLF001
    assert [r.sku for r in kept.answer_wav(to_wav(say("where are the bananas"))).results][:1] == [
        "B-1"]
    assert [r.sku for r in newest.answer_wav(to_wav(say("do you have kiwi"))).results][:1] == [
        "K-1"]
