"""Fitting the quiet around a question to the engine: for pocketsphinx long pauses go and the words
and a margin around them stay; for Vosk a question that starts or ends on a syllable gets quiet
added."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import numpy as np

from voice.audio import Audio, to_pcm16
from voice.denoise import suppress_noise
from voice.search import VoiceSearch
from voice.trim import LEAD_S, MARGIN_S, TAIL_S, pad_quiet, trim_quiet

RATE = 16_000


def _padded(audio: Audio, seconds: float) -> tuple[bytes, slice]:
    """``audio`` with ``seconds`` of its own quietest level added before and after; returns the
    PCM and where the original recording lies in it (in samples)."""
    samples = audio.samples.astype(np.float64)
    rng = np.random.default_rng(3)
    quiet = float(np.std(samples[: int(0.2 * RATE)]))
    pad = rng.standard_normal(int(seconds * RATE)) * quiet
    pcm = to_pcm16(np.concatenate([pad, samples, pad]))
    return pcm, slice(len(pad), len(pad) + len(samples))


def _speech_span(pcm: bytes) -> tuple[int, int]:
    """First and last sample louder than a tenth of the peak."""
    x = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.float64))
    loud = np.flatnonzero(x > 0.1 * x.max())
    return int(loud[0]), int(loud[-1])


def test_long_pauses_are_cut_and_the_words_kept(say: Callable[..., Audio]) -> None:
    for snr, noise in ((45, "white"), (10, "pink"), (10, "white")):
        recording = say("where can I find oat milk", snr_db=snr, noise=noise)
        pcm, _ = _padded(recording, 2.0)
        cleaned = suppress_noise(pcm, RATE)
        trimmed = trim_quiet(cleaned, RATE)
        assert len(trimmed) < len(cleaned) - 2 * RATE * 2 * 1.5, (snr, noise)  # most of 4 s
        first, last = _speech_span(cleaned)
        start = cleaned.find(trimmed)
        assert start >= 0, "a trimmed recording is a piece of the original"
        kept_before, kept_after = first - start // 2, start // 2 + len(trimmed) // 2 - last
        assert kept_before >= MARGIN_S * RATE * 0.9, (snr, noise, kept_before)
        assert kept_after >= MARGIN_S * RATE * 0.9, (snr, noise, kept_after)


def test_a_quiet_word_at_the_edge_survives() -> None:
    """A soft sound 20 dB under the main word, where a first syllable would be, is kept."""
    rng = np.random.default_rng(0)
    t = np.arange(int(0.3 * RATE)) / RATE
    soft = 0.03 * np.sin(2 * np.pi * 300 * t)
    loud = 0.3 * np.sin(2 * np.pi * 300 * t)
    silence = np.zeros(RATE)
    pcm = to_pcm16(
        np.concatenate([silence, soft, loud, silence]) + rng.standard_normal(int(2.6 * RATE)) * 3e-4
    )
    trimmed = trim_quiet(pcm, RATE)
    assert len(trimmed) >= (0.6 + 2 * MARGIN_S - 0.02) * RATE * 2
    assert pcm.find(trimmed) <= (1.0 - MARGIN_S + 0.02) * RATE * 2


def test_silence_noise_and_short_audio_come_back_whole() -> None:
    noise = to_pcm16(np.random.default_rng(1).standard_normal(2 * RATE) * 0.05)
    for pcm in (bytes(2 * RATE * 2), noise, to_pcm16(np.ones(RATE // 10) * 0.2), b""):
        assert trim_quiet(pcm, RATE) == pcm


def test_a_recording_without_quiet_around_the_words_gets_some() -> None:
    rng = np.random.default_rng(5)
    word = 0.3 * np.sin(2 * np.pi * 300 * np.arange(int(0.6 * RATE)) / RATE)
    floor = 1e-3
    pcm = to_pcm16(
        np.concatenate([rng.standard_normal(800) * floor, word, rng.standard_normal(800) * floor])
    )
    padded = pad_quiet(pcm, RATE)
    assert padded.find(pcm) >= 0, "the recording itself is not changed"
    start = padded.find(pcm) // 2
    added_after = len(padded) // 2 - start - len(pcm) // 2
    assert start + 800 >= LEAD_S * RATE * 0.95 and added_after + 800 >= TAIL_S * RATE * 0.95
    lead = np.frombuffer(padded, dtype="<i2")[:start].astype(np.float64)
    assert 0.3 * floor * 32767 < lead.std() < 3 * floor * 32767, "quiet at the recording's level"
    assert pad_quiet(padded, RATE) == padded, "enough quiet already: unchanged"


KOREAN_QUESTIONS = ("{} 어디 있어요", "{} 있어요", "{} 주세요", "{} 어디에 있나요")


def test_vosk_understands_questions_that_end_on_the_last_syllable(
    korean_search: VoiceSearch,
) -> None:
    """Plain ``espeak-ng --stdout`` files: speech from 0.05 s, 0.3 s of digital silence after.
    Without quiet added Vosk heard a word in the onset ("우유 바나나 어디에 있어요") and got 1 to 3
    of these 12 right; with it 8."""
    from tests.voice.conftest import ENGLISH_CATALOG

    hits = 0
    for i, entry in enumerate(ENGLISH_CATALOG):
        question = KOREAN_QUESTIONS[i % 4].format(entry.names["ko"])
        wav = subprocess.run(
            ["espeak-ng", "-v", "ko", "--stdout", question], capture_output=True, check=True
        ).stdout
        answer = korean_search.answer_wav(wav)
        hits += bool(answer.results) and answer.results[0].sku == entry.sku
    assert hits >= 6, hits
