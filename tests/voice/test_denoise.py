"""Noise suppression: steady noise goes down, speech stays, clean audio is left alone."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from voice.audio import Audio, to_pcm16
from voice.denoise import KEEP_DB, suppress_noise
from voice.synthesis import PAD_SECONDS

RATE = 16_000


def _band_db(samples: np.ndarray) -> float:
    """Power in 200-4000 Hz, the band that carries speech (pink noise's rumble below it is not
    what the engines listen to: pocketsphinx starts at 130 Hz)."""
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    power = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    return float(10 * np.log10(power[(freqs > 200) & (freqs < 4000)].mean()))


def _levels(pcm: bytes, speech: slice) -> tuple[float, float]:
    """(noise level in the leading pad, speech level) in dB."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return _band_db(x[: int(PAD_SECONDS * RATE)]), _band_db(x[speech])


def test_noise_is_brought_down_and_speech_kept(say: Callable[..., Audio]) -> None:
    for noise in ("white", "pink"):
        noisy = to_pcm16(say("where can I find oat milk", snr_db=10, noise=noise).samples)
        middle = slice(len(noisy) // 4, len(noisy) // 4 * 3)
        noise_before, speech_before = _levels(noisy, middle)
        noise_after, speech_after = _levels(suppress_noise(noisy, RATE), middle)
        assert noise_before - noise_after > 15, (noise, noise_before, noise_after)
        assert speech_before - speech_after < 1.5, (noise, speech_before, speech_after)
        # never below KEEP_DB under the speech: near-silence depresses the engines
        assert speech_after - noise_after < KEEP_DB + 5


def test_clean_audio_comes_back_unchanged(say: Callable[..., Audio]) -> None:
    clean = to_pcm16(say("do you have bananas").samples)
    assert suppress_noise(clean, RATE) == clean


def test_short_and_silent_audio_come_back_unchanged() -> None:
    short = to_pcm16(np.random.default_rng(0).standard_normal(1_600) * 0.1)
    silent = bytes(32_000)
    assert suppress_noise(short, RATE) == short
    assert suppress_noise(silent, RATE) == silent
    assert suppress_noise(b"", RATE) == b""


def test_other_rates_keep_the_length() -> None:
    noise = np.random.default_rng(1).standard_normal(44_100) * 0.05
    tone = 0.5 * np.sin(np.arange(44_100) * 2 * np.pi * 440 / 44_100) * (np.arange(44_100) > 22_050)
    pcm = to_pcm16(noise + tone)
    out = suppress_noise(pcm, 44_100)
    assert len(out) == len(pcm) and out != pcm


def test_exponential_integral_matches_tabulated_values() -> None:
    """E1 at points from Abramowitz and Stegun's tables, on both sides of the switch at 1."""
    from voice.denoise import _exp_integral

    x = np.array([0.01, 0.1, 0.5, 1.0, 2.0, 5.0])
    table = np.array([4.037930, 1.822924, 0.559774, 0.219384, 0.048901, 0.001148])
    assert np.allclose(_exp_integral(x), table, rtol=1e-4, atol=1e-6)
