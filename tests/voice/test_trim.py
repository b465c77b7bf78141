"""Trimming the quiet lead-in and tail: long pauses go, the words and a margin around them stay."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from voice.audio import Audio, to_pcm16
from voice.denoise import suppress_noise
from voice.trim import MARGIN_S, trim_quiet

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
    pcm = to_pcm16(np.concatenate([silence, soft, loud, silence]) + rng.standard_normal(
        int(2.6 * RATE)) * 3e-4)
    trimmed = trim_quiet(pcm, RATE)
    assert len(trimmed) >= (0.6 + 2 * MARGIN_S - 0.02) * RATE * 2
    assert pcm.find(trimmed) <= (1.0 - MARGIN_S + 0.02) * RATE * 2


def test_silence_noise_and_short_audio_come_back_whole() -> None:
    noise = to_pcm16(np.random.default_rng(1).standard_normal(2 * RATE) * 0.05)
    for pcm in (bytes(2 * RATE * 2), noise, to_pcm16(np.ones(RATE // 10) * 0.2), b""):
        assert trim_quiet(pcm, RATE) == pcm
