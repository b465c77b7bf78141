"""Spoken forms of shelf-label names: what a customer says for "Coca-Cola 330ml Can"."""

from __future__ import annotations

import pytest

from voice.languages import CHINESE, ENGLISH, KOREAN
from voice.matcher import CatalogEntry
from voice.spoken import spoken_forms, with_spoken_forms


@pytest.mark.parametrize(
    ("label", "forms"),
    [
        ("Coca-Cola 330ml Can", ("coca cola",)),
        ("Coca-Cola Zero 24 x 330ml", ("coca cola zero",)),
        ("Heinz Beanz 4x415g", ("heinz beanz",)),
        ("Free-range Eggs x12", ("free range eggs",)),
        ("Pack of 6 Eggs", ("eggs",)),
        ("Andrex Toilet Tissue 9 Rolls", ("andrex toilet tissue",)),
        ("Semi Skimmed Milk 4 Pints", ("semi skimmed milk",)),
        ("Ben & Jerry's Cookie Dough", ("ben and jerry's cookie dough",)),
        ("M&M's Peanut (45g)", ("m and m's peanut 45g", "m and m's peanut")),
        ("100% Orange Juice 1.5 L", ("100 percent orange juice 1 point 5 l", "orange juice")),
        ("Evian 1.5L Bottle", ("evian 1 point 5l bottle", "evian")),
        ("Yorkshire Tea 160 Bags", ("yorkshire tea",)),
        ("Mars 4 Bars", ("mars",)),
        # abbreviations said in full ("dr" is "drive" first in the dictionary)
        ("Dr Pepper 330ml", ("doctor pepper 330ml", "doctor pepper")),
        ("Dr. Oetker Pizza", ("doctor oetker pizza",)),
        ("St Ivel Shape", ("saint ivel shape",)),
        # a count inside the name, and the label's own words ("loose", "original")
        ("Birds Eye 10 Fish Fingers", ("birds eye fish fingers",)),
        ("Bananas Loose", ("bananas",)),
        ("Fairy Original Washing Up Liquid 433ml", ("fairy washing up liquid",)),
        # nothing a customer would leave off: no extra form
        ("Oatly Oat Milk", ()),
        ("Banana", ()),
        ("5 Alive", ()),
        ("WD-40", ()),
        ("Original", ()),
        # a packaging word is the product unless the label had a pack size
        ("Water Bottle", ()),
        ("Ice Cube Tray", ()),
        # a name that is only a size keeps its words
        ("1L", ()),
    ],
)
def test_english_shelf_labels(label: str, forms: tuple[str, ...]) -> None:
    assert spoken_forms(label, ENGLISH) == forms


def test_sizes_leave_korean_and_chinese_names_too() -> None:
    assert spoken_forms("서울우유 1L", KOREAN) == ("서울우유",)
    assert spoken_forms("可口可乐 330毫升", CHINESE) == ("可口可乐",)
    assert spoken_forms("바나나", KOREAN) == ()


def test_forms_join_the_entrys_aliases_in_the_language_only() -> None:
    entry = CatalogEntry(
        "C-1",
        {"en": "Coca-Cola 330ml Can", "ko": "코카콜라 캔 330ml"},
        {"en": ["coke", "coca cola"]},
    )
    english = with_spoken_forms(entry, ENGLISH)
    assert english.aliases == {"en": ["coke", "coca cola"]}  # "coca cola" was there already
    korean = with_spoken_forms(entry, KOREAN)
    assert korean.aliases == {"en": ["coke", "coca cola"], "ko": ["코카콜라 캔"]}
    assert korean.names == entry.names
    plain = CatalogEntry("B-1", {"en": "Banana"})
    assert with_spoken_forms(plain, ENGLISH) is plain
