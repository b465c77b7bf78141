"""Noise suppression: steady noise goes down, speech stays, clean audio is left alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from voice import rnnoise
from voice.audio import Audio, to_pcm16
from voice.denoise import KEEP_DB, ORIGINAL_SHARE, Method, suppress_noise
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


@pytest.mark.parametrize("method", ["rnnoise", "spectral"])
def test_noise_is_brought_down_and_speech_kept(say: Callable[..., Audio], method: Method) -> None:
    assert rnnoise.available()  # make setup installs the library on this machine
    for noise in ("white", "pink"):
        noisy = to_pcm16(say("where can I find oat milk", snr_db=10, noise=noise).samples)
        middle = slice(len(noisy) // 4, len(noisy) // 4 * 3)
        noise_before, speech_before = _levels(noisy, middle)
        noise_after, speech_after = _levels(suppress_noise(noisy, RATE, method), middle)
        assert noise_before - noise_after > 15, (noise, noise_before, noise_after)
        assert speech_before - speech_after < 1.5, (noise, speech_before, speech_after)
        # never near-silence, which depresses the engines: the spectral estimator stops
        # KEEP_DB under the speech, RNNoise has a share of the recording mixed back under it
        if method == "spectral":
            assert speech_after - noise_after < KEEP_DB + 5
        else:
            assert noise_before - noise_after < -20 * np.log10(ORIGINAL_SHARE) + 1


def test_clean_audio_comes_back_unchanged(say: Callable[..., Audio]) -> None:
    clean = to_pcm16(say("do you have bananas").samples)
    assert suppress_noise(clean, RATE) == clean
    assert suppress_noise(clean, RATE, "spectral") == clean


def test_rnnoise_keeps_the_speech_in_time(say: Callable[..., Audio]) -> None:
    """Its output lags its input by two 10 ms frames; taken back, a clean question lines up
    with itself (a lag would smear it against the share of the original mixed back)."""
    for rate in (16_000, 44_100):
        clean = say("do you have bananas", rate=rate).samples.astype(np.float64) * 32767
        out = rnnoise.denoise(clean, rate)
        assert len(out) == len(clean)
        lags = range(-rate // 100, rate // 100 + 1)
        best = max(lags, key=lambda k: float(np.dot(np.roll(clean, k), out)))
        assert abs(best) <= 1, (rate, best)


def test_rnnoise_in_pieces_equals_rnnoise_on_the_whole_recording() -> None:
    """A kiosk's stream is cleaned piece by piece as it arrives (pieces of any size, down to
    one sample); what comes out is what the whole recording gives, so a streamed question
    and an upload of it are answered alike."""
    rng = np.random.default_rng(3)
    for rate in (16_000, 44_100):
        noisy = rng.standard_normal(rate * 2) * 2_000
        whole = rnnoise.denoise(noisy, rate)
        denoiser, start = rnnoise.Denoiser(rate), 0
        while start < len(noisy):
            size = int(rng.integers(1, 3_000))
            denoiser.accept(noisy[start : start + size])
            start += size
        assert np.array_equal(denoiser.finish(), whole)
        with pytest.raises(RuntimeError, match="finished"):
            denoiser.finish()  # its state is freed: a second use must not reach the library


def test_rnnoise_missing_means_the_spectral_suppression(
    say: Callable[..., Audio], monkeypatch: pytest.MonkeyPatch
) -> None:
    noisy = to_pcm16(say("where can I find oat milk", snr_db=10).samples)
    spectral = suppress_noise(noisy, RATE, "spectral")
    assert suppress_noise(noisy, RATE) != spectral
    monkeypatch.setattr(rnnoise, "library_path", lambda: None)  # no wheel here
    monkeypatch.setattr(rnnoise, "_load", rnnoise._load.__wrapped__)  # uncached
    assert suppress_noise(noisy, RATE) == spectral
    with pytest.raises(RuntimeError, match="not installed .* make setup installs it"):
        rnnoise.denoise(np.zeros(1_600), RATE)


def test_a_damaged_rnnoise_library_is_named_with_its_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    damaged = tmp_path / "librnnoise.so"
    damaged.write_bytes(b"\x7fELF not really")
    monkeypatch.setattr(rnnoise, "library_path", lambda: damaged)
    monkeypatch.setattr(rnnoise, "_load", rnnoise._load.__wrapped__)  # uncached
    assert not rnnoise.available()
    assert f"{damaged} cannot be loaded" in (rnnoise.problem() or "")


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
