"""Exact digital silence: filled with a faint hiss before decoding, so plain TTS files (and any
recording with zeroed stretches) are heard like microphone audio; real recordings are untouched."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from voice.audio import read_wav
from voice.search import VoiceSearch
from voice.silence import HISS_LSB, MIN_RUN, fill_digital_silence


def _pcm(samples: list[int] | np.ndarray) -> bytes:
    return np.asarray(samples, dtype="<i2").tobytes()


def test_runs_of_zeros_become_faint_hiss_and_speech_is_untouched() -> None:
    rng = np.random.default_rng(3)
    speech = (rng.standard_normal(800) * 3000).astype(np.int16)
    speech[speech == 0] = 1
    samples = np.concatenate(
        [np.zeros(1600, np.int16), speech, np.zeros(MIN_RUN - 1, np.int16), speech]
    )
    filled = np.frombuffer(fill_digital_silence(_pcm(samples)), dtype="<i2")
    assert len(filled) == len(samples)
    assert np.array_equal(filled[1600:], samples[1600:]), "speech and short zero runs must not move"
    hiss = filled[:1600].astype(np.float64)
    assert np.count_nonzero(hiss) > 1200
    assert 0.5 * HISS_LSB < hiss.std() < 2 * HISS_LSB


def test_recordings_without_digital_silence_come_back_as_they_were() -> None:
    samples = (np.random.default_rng(4).standard_normal(16_000) * 40).astype(np.int16)
    samples[::7] = 0  # isolated zeros are zero crossings, not silence
    pcm = _pcm(samples)
    assert fill_digital_silence(pcm) is pcm
    assert fill_digital_silence(b"") == b""


def test_the_same_recording_always_gets_the_same_hiss() -> None:
    pcm = _pcm(np.zeros(4000, np.int16))
    assert fill_digital_silence(pcm) == fill_digital_silence(pcm)


PLAIN_TTS_QUESTIONS = [
    ("en", "where can I find oat milk", "GS-045"),
    ("en", "where is the pineapple", "GS-023"),
    ("en", "do you sell garlic", "GS-064"),
    ("en", "where are the cucumbers", "GS-063"),
    ("en-us", "I need carrots", "GS-062"),
    ("en-us", "do you sell garlic", "GS-064"),
]


@pytest.mark.parametrize(("voice", "question", "sku"), PLAIN_TTS_QUESTIONS)
def test_a_plain_espeak_file_is_understood(
    english_search: VoiceSearch, voice: str, question: str, sku: str
) -> None:
    """The WAV exactly as ``espeak-ng --stdout`` writes it (22.05 kHz, exact zeros between words),
    as a store tries the kiosk with a synthesised question; before the fill each of these was
    misheard ("where are an gum", "money", "do you sell thought")."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", question], capture_output=True, check=True
    ).stdout
    samples = read_wav(wav).samples
    assert np.count_nonzero(samples == 0) > len(samples) // 10, "the file must hold digital silence"
    answer = english_search.answer_wav(wav)
    assert [m.sku for m in answer.results][:1] == [sku], answer.transcript
