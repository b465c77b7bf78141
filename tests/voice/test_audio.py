"""WAV reading, limits and resampling: the audio the engines get is what was recorded."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest

from voice.audio import (
    Audio,
    AudioError,
    AudioLimits,
    StreamResampler,
    _factors,
    _filter_bank,
    read_wav,
    resample,
    to_pcm16,
)
from voice.synthesis import to_wav


def _sine(rate: int, freq: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _wav(
    fmt_tag: int, bits: int, channels: int, rate: int, payload: bytes, extensible: bool = False
) -> bytes:
    block = channels * bits // 8
    if extensible:
        fmt = struct.pack(
            "<HHIIHHHHIH14s",
            0xFFFE,
            channels,
            rate,
            rate * block,
            block,
            bits,
            22,
            bits,
            0,
            fmt_tag,
            b"\x00" * 14,
        )
    else:
        fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _level(samples: np.ndarray, rate: int, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[np.argmin(np.abs(freqs - freq))])


@pytest.mark.parametrize(
    ("tag", "bits", "extensible"),
    [
        (1, 16, False),
        (1, 24, False),
        (1, 32, False),
        (1, 8, False),
        (3, 32, False),
        (3, 64, False),
        (1, 16, True),
        (3, 32, True),
    ],
)
def test_reads_common_encodings_and_downmixes(tag: int, bits: int, extensible: bool) -> None:
    left = _sine(22_050, 440, 0.5)
    stereo = np.stack([left, left], axis=1).reshape(-1)
    if tag == 3:
        payload = stereo.astype("<f4" if bits == 32 else "<f8").tobytes()
    elif bits == 8:
        payload = (stereo * 127 + 128).round().astype(np.uint8).tobytes()
    elif bits == 24:
        ints = (stereo * (2**23 - 1)).round().astype("<i4")
        payload = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    else:
        payload = (stereo * (2 ** (bits - 1) - 1)).round().astype(f"<i{bits // 8}").tobytes()
    audio = read_wav(_wav(tag, bits, 2, 22_050, payload, extensible))
    assert audio.rate == 22_050
    assert len(audio.samples) == len(left)
    assert np.max(np.abs(audio.samples - left)) < 0.02


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_audio"),
        (b"hello, this is not audio at all", "not_wav"),
        (b"RIFF\x04\x00\x00\x00WAVE", "corrupt_audio"),
        (_wav(1, 16, 1, 16_000, b""), "empty_audio"),
        (_wav(2, 16, 1, 16_000, b"\x00" * 3200), "unsupported_audio"),
        (_wav(1, 16, 1, 4_000, b"\x00" * 3200), "unsupported_audio"),
        (_wav(1, 16, 1, 16_000, b"\x00" * 640), "audio_too_short"),
    ],
)
def test_bad_audio_is_refused_with_a_reason(data: bytes, code: str) -> None:
    with pytest.raises(AudioError) as caught:
        read_wav(data)
    assert caught.value.code == code
    assert len(caught.value.message) > 15


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize(("value", "message"), [
    (1e30, "float samples up to 1e+30, over 64 times full scale"),
    (65.0, "float samples up to 65, over 64 times full scale"),
    (np.inf, "float samples that are not numbers (NaN or infinity)"),
    (np.nan, "float samples that are not numbers (NaN or infinity)"),
])
def test_float_samples_no_recording_holds_are_refused(
    bits: int, value: float, message: str
) -> None:
    """Why: a float WAV of 1e30 (bytes that are not float samples) was clipped to full scale and
    decoded as a question, and two channels of 1e308 were called "not numbers" (their sum
    overflowed). Up to 64 times full scale the samples are still clipped, as before."""
    samples = _sine(16_000, 300).astype(np.float64)
    dtype = "<f4" if bits == 32 else "<f8"
    for channels in (1, 2):
        loud = np.repeat(samples, channels)
        loud[40 * channels] = value
        with pytest.raises(AudioError) as caught:
            read_wav(_wav(3, bits, channels, 16_000, loud.astype(dtype).tobytes()))
        assert caught.value.code == "corrupt_audio"
        assert message in caught.value.message
    if bits == 64:
        both = np.repeat(samples, 2)
        both[80:82] = 1e308
        with pytest.raises(AudioError, match="up to 1e"):
            read_wav(_wav(3, 64, 2, 16_000, both.astype(dtype).tobytes()))
    samples[40] = 64.0
    assert read_wav(_wav(3, bits, 1, 16_000, samples.astype(dtype).tobytes())).samples[40] == 1.0


def test_too_long_audio_is_refused() -> None:
    data = to_wav(Audio(np.zeros(16_000 * 3, dtype=np.float32), 16_000))
    with pytest.raises(AudioError) as caught:
        read_wav(data, AudioLimits(max_seconds=2.0))
    assert caught.value.code == "audio_too_long"
    assert "2 seconds" in caught.value.message


def test_a_cut_off_file_is_refused_and_a_streamed_one_read_whole() -> None:
    """Why: half a question was decoded as if it were the whole, and answered wrong."""
    data = to_wav(Audio(_sine(16_000, 300), 16_000), channels=2)
    with pytest.raises(AudioError, match="cut short: its data chunk declares 64000 bytes and "
                       "32000 arrived") as caught:
        read_wav(data[: len(data) - 32_000])
    assert caught.value.code == "corrupt_audio"
    data_at = data.index(b"data")
    for placeholder in (0, 0x7FFFF000, 0xFFFFFFFF):  # a recorder writing to a pipe
        streamed = data[: data_at + 4] + struct.pack("<I", placeholder) + data[data_at + 8 :]
        assert len(read_wav(streamed).samples) == 16_000


@pytest.mark.parametrize("src", [8_000, 22_050, 44_100, 48_000, 191_999])
def test_resampling_keeps_speech_band_and_removes_aliases(src: int) -> None:
    """191,999 Hz: a rate with no common factor with 16 kHz wanted a 75 MB filter table per
    rate (16 such uploads took the hub from 360 MB to 1.6 GB); it is resampled through the
    nearest ratio with few phases instead."""
    tone = _sine(src, 1_000) + (_sine(src, 11_000) if src > 22_050 else 0)
    out = resample(tone, src, 16_000)
    assert abs(len(out) - 16_000) <= 1
    kept = _level(out[2000:-2000], 16_000, 1_000)
    alias = _level(out[2000:-2000], 16_000, 5_000)  # 11 kHz would fold to 5 kHz
    reference = _level(_sine(16_000, 1_000)[2000:-2000], 16_000, 1_000)
    assert abs(kept / reference - 1) < 0.02
    assert alias < kept * 1e-3
    assert _filter_bank(*_factors(src, 16_000))[0].nbytes < 1_000_000


@pytest.mark.parametrize(("rate", "piece"), [(44_100, 4_410), (48_000, 1), (16_000, 160)])
def test_streamed_resampling_equals_whole_file_resampling(rate: int, piece: int) -> None:
    """In pieces of any size, down to one sample (a kiosk's two-byte frames), the stream gives
    what resampling the whole recording gives; each piece now costs only its own outputs."""
    signal = np.random.default_rng(1).standard_normal(rate // 5).astype(np.float32) * 0.1
    stream = StreamResampler(rate, 16_000)
    pieces = [stream.accept(signal[i : i + piece]) for i in range(0, len(signal), piece)]
    pieces.append(stream.flush())
    streamed = np.concatenate(pieces)
    whole = resample(signal, rate, 16_000)
    assert len(streamed) == len(whole)
    assert np.max(np.abs(streamed - whole)) < 1e-5


def test_pcm16_round_trip_through_wave() -> None:
    samples = _sine(16_000, 200)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(to_pcm16(samples))
    assert np.max(np.abs(read_wav(buffer.getvalue()).samples - samples)) < 1e-4
