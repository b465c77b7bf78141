"""Exact digital silence: a recording that holds it gets a faint noise floor before decoding, so
plain TTS files (and any recording with zeroed stretches) are heard like microphone audio; real
recordings are untouched."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import numpy as np
import pytest

from voice.audio import Audio, active_level, read_wav
from voice.search import VoiceSearch
from voice.silence import (
    FLOOR_DB,
    MIN_FLOOR_LSB,
    MIN_RUN,
    MIN_SPEECH_CONTRAST_DB,
    add_floor_under_silence,
    holds_no_speech,
    speech_contrast_db,
)
from voice.synthesis import pink_noise, to_wav

RATE = 16_000


def _pcm(samples: np.ndarray) -> bytes:
    return np.asarray(samples, dtype="<i2").tobytes()


def _speech(seed: int, n: int = 8000) -> np.ndarray:
    samples = (np.random.default_rng(seed).standard_normal(n) * 3000).astype(np.int16)
    samples[samples == 0] = 1
    return samples


def test_a_floor_45_db_under_the_speech_is_added_when_there_is_digital_silence() -> None:
    speech = _speech(3)
    samples = np.concatenate([np.zeros(4000, np.int16), speech, np.zeros(4000, np.int16)])
    out = np.frombuffer(add_floor_under_silence(_pcm(samples), RATE), dtype="<i2")
    assert len(out) == len(samples)
    floor = out[:4000].astype(np.float64)
    expected = active_level(speech, RATE) * 10 ** (-FLOOR_DB / 20)
    assert np.count_nonzero(floor) > 3000
    assert 0.8 * expected < floor.std() < 1.25 * expected
    moved = out[4000:12000].astype(np.float64) - speech
    assert np.abs(moved).max() < 8 * expected, "the speech itself only gets the faint floor"


def test_recordings_without_digital_silence_come_back_as_they_were() -> None:
    samples = (np.random.default_rng(4).standard_normal(16_000) * 40).astype(np.int16)
    samples[::7] = 0  # isolated zeros are zero crossings, not silence
    samples[100 : 100 + MIN_RUN - 1] = 0  # shorter than a run of silence
    pcm = _pcm(samples)
    assert add_floor_under_silence(pcm, RATE) is pcm
    assert add_floor_under_silence(b"", RATE) == b""


def test_pure_silence_gets_the_least_floor_and_the_same_one_every_time() -> None:
    pcm = _pcm(np.zeros(4000, np.int16))
    out = add_floor_under_silence(pcm, RATE)
    assert out == add_floor_under_silence(pcm, RATE)
    floor = np.frombuffer(out, dtype="<i2").astype(np.float64)
    assert 0.5 * MIN_FLOOR_LSB < floor.std() < 2 * MIN_FLOOR_LSB


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


@pytest.mark.parametrize(
    ("level", "kind"), [(0.0, "white"), (8.0, "white"), (40.0, "white"), (600.0, "white"),
                        (400.0, "pink")]
)
def test_a_recording_with_no_question_in_it_gets_no_answer(
    english_search: VoiceSearch, level: float, kind: str
) -> None:
    """Digital silence, a muted microphone's hiss, a kiosk microphone's steady noise floor or a
    fridge's hum: decoded, they were heard as "oh" or "who", and the kiosk said it had no "who"
    instead of asking again. Now the answer is empty, as for a question the engine could not
    make out."""
    rng = np.random.default_rng(5)
    noise = pink_noise(2 * RATE, rng) if kind == "pink" else rng.standard_normal(2 * RATE)
    wav = to_wav(Audio((noise * level / 32768).astype(np.float32), RATE))
    answer = english_search.answer_wav(wav)
    assert (answer.transcript, answer.asked, answer.results, answer.in_store) == ("", "", (), False)


@pytest.mark.parametrize(("snr_db", "noise"), [(45.0, "white"), (10.0, "white"), (10.0, "pink")])
def test_a_question_in_noise_is_heard_as_one(
    say: Callable[..., Audio], snr_db: float, noise: str
) -> None:
    spoken = say("where are the bananas", snr_db=snr_db, noise=noise)
    pcm = to_wav(spoken)[44:]
    assert speech_contrast_db(np.frombuffer(pcm, dtype="<i2"), RATE) > MIN_SPEECH_CONTRAST_DB + 3
    assert not holds_no_speech(pcm, RATE)
