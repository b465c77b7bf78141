"""The matcher shared by typed and spoken search: names, aliases, Korean spacing, Chinese sounds."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT
from voice.matcher import CatalogEntry, ProductMatcher, jamo_key, pinyin_key

CATALOG = [
    CatalogEntry("OAT", {"en": "Oatly Oat Milk", "zh": "燕麦奶"}, {"en": ["oat drink"]}),
    CatalogEntry("YOG", {"en": "Arla Natural Yoghurt", "zh": "酸奶", "ko": "플레인 요거트"}),
    CatalogEntry("MUS", {"en": "Brown Cap Mushroom", "ko": "양송이버섯"}),
    CatalogEntry("CRM", {"en": "Crème fraîche"}),
]


def test_typed_search_finds_names_aliases_and_accents() -> None:
    matcher = ProductMatcher(CATALOG)
    assert matcher.search("oat drink")[0].sku == "OAT"
    assert matcher.search("creme fraiche")[0].sku == "CRM"
    assert matcher.search("natural yogurt")[0].sku == "YOG"


def test_korean_spacing_and_one_wrong_letter_still_match() -> None:
    matcher = ProductMatcher(CATALOG)
    assert jamo_key("양송이 버섯") == jamo_key("양송이버섯")
    top = matcher.search("양송이 버섰", lang="ko")[0]  # one wrong final consonant
    assert top.sku == "MUS" and top.score > 0.85


def test_chinese_homophones_and_tone_errors_match_by_pinyin() -> None:
    matcher = ProductMatcher(CATALOG)
    assert pinyin_key("酸奶") == pinyin_key("蒜奶") == "suan nai"
    top = matcher.search("蒜奶", lang="zh")[0]  # a homophone with another tone
    assert top.sku == "YOG" and top.score >= 0.95
    assert matcher.search("燕麦耐", lang="zh")[0].sku == "OAT"


def test_pinyin_typed_on_a_latin_keyboard_finds_the_chinese_name() -> None:
    """Why: "yanmainai" found Banana at 0.67 and "xiangjiao" nothing in a Chinese catalogue."""
    matcher = ProductMatcher(
        [*CATALOG, CatalogEntry("BAN", {"en": "Banana", "zh": "香蕉"})]
    )
    for typed, sku in (("yanmainai", "OAT"), ("yan mai nai", "OAT"), ("xiangjiao", "BAN")):
        top = matcher.search(typed)[0]
        assert top.sku == sku and top.score == 1.0, typed
    assert matcher.search("banana")[0].sku == "BAN"
    # a transcript is compared with whole names only
    assert all(m.sku != "OAT" for m in matcher.search("yan mai nai", whole=True))


def test_unrelated_text_scores_low() -> None:
    matcher = ProductMatcher(CATALOG)
    hits = matcher.search("batteries")
    assert not hits or hits[0].score < 0.6


def test_a_transcript_fragment_does_not_match_every_name_containing_it() -> None:
    matcher = ProductMatcher(
        [CatalogEntry("LIM", {"ko": "라임"}), CatalogEntry("OAT", {"en": "Oatly Oat Milk"})]
    )
    assert matcher.search("라", lang="ko")[0].score >= 0.8  # typed: a fragment finds the name
    spoken = matcher.search("라", lang="ko", whole=True)
    assert not spoken or spoken[0].score < 0.8
    assert matcher.search("oatly oat milk", whole=True)[0].score == 1.0


def test_pinyin_dictionaries_load_only_for_chinese_text() -> None:
    """Why: pypinyin loads its dictionaries when imported, 55 MB of the hub's memory that a
    store without Chinese names held for nothing."""
    script = (
        "import sys, hub.app\n"
        "from voice.matcher import CatalogEntry, ProductMatcher\n"
        "m = ProductMatcher([CatalogEntry('OAT-1', {'en': 'Oat milk', 'ko': '귀리 우유'})])\n"
        "m.search('oat milk')\n"
        "print('pypinyin' in sys.modules)\n"
        "ProductMatcher([CatalogEntry('Y-1', {'zh': '酸奶'})])\n"
        "print('pypinyin' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=REPO_ROOT, timeout=120).stdout.split()
    assert out == ["False", "True"]
