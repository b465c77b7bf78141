"""Voice settings: engine choice, relative model folders, and pronunciations checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import ConfigError, parse_config

BASE = """
[store]
id = "s1"
name = "Store"
database = "hub.db"
"""


def test_relative_vosk_model_dir_is_resolved_against_the_config_file(tmp_path: Path) -> None:
    text = BASE + '[voice]\nengine = { type = "vosk", model_dir = "models/ko", language = "ko" }\n'
    config = parse_config(text, tmp_path / "etc" / "hub.toml")
    assert config.voice.engine.model_dir == (tmp_path / "etc" / "models" / "ko").resolve()


def test_pocketsphinx_is_the_default_engine(tmp_path: Path) -> None:
    config = parse_config(BASE, tmp_path / "hub.toml")
    assert config.voice.engine.type == "pocketsphinx" and config.voice.engine.model_dir is None


def test_bad_pronunciation_is_refused_with_the_word(tmp_path: Path) -> None:
    text = BASE + '[voice]\npronunciations = { arla = "ar la" }\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "hub.toml")
    assert "arla" in str(caught.value.problems)


def test_a_phone_the_model_lacks_is_refused_by_name(tmp_path: Path) -> None:
    """Why: "AA R L A" (capitals, so it passed) made the engine refuse the whole grammar."""
    text = BASE + '[voice]\npronunciations = { arla = "AA R L A" }\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "hub.toml")
    problems = str(caught.value.problems)
    assert "arla" in problems and "'A' is not one" in problems and "ZH" in problems
    ok = BASE + '[voice]\npronunciations = { arla = "AA R L AH" }\n'
    assert parse_config(ok, tmp_path / "hub.toml").voice.pronunciations == {"arla": "AA R L AH"}
