"""Audio in: WAV bytes from a kiosk, a phone or a test, turned into the mono 16-bit PCM at the rate
the speech model was trained on.

Browsers and phones record at 44.1 or 48 kHz, often in stereo and sometimes as 32-bit float or
WAVE_FORMAT_EXTENSIBLE, which the standard library's ``wave`` reader refuses; a model told the
wrong rate recognises nothing, and a model fed 8 kHz audio loses half its accuracy. So the RIFF
chunks are read here, every channel is averaged, and the samples are resampled with a band-limited
(windowed-sinc, polyphase) filter to exactly the model's rate.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

_PCM = 1
_FLOAT = 3
_EXTENSIBLE = 0xFFFE
MIN_RATE = 8_000
MAX_RATE = 192_000
MAX_CHANNELS = 8


class AudioError(ValueError):
    """Audio that cannot be used, with a ``code`` for programs and a message for a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Audio:
    """Mono samples in [-1, 1] at ``rate`` Hz."""

    samples: np.ndarray
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


@dataclass(frozen=True)
class AudioLimits:
    """What a request may send: long enough to hold a word, short enough to decode at once."""

    min_seconds: float = 0.2
    max_seconds: float = 15.0


#: The largest float sample read, in units of full scale (1.0): 36 dB over it. A recording
#: clips long before that, so a larger value is a damaged file or bytes that are not float
#: samples at all (1e30, 3.4e38), not a loud question.
MAX_FLOAT_PEAK = 64.0

#: A data chunk size from this up (or 0) is what a recorder writing to a pipe puts there, not
#: knowing the length yet: espeak-ng and sox write 0x7FFFF000, others 0xFFFFFFFF.
STREAMED_SIZE = 0x7FFFF000


def read_wav(data: bytes, limits: AudioLimits = AudioLimits()) -> Audio:
    """Decode a RIFF/WAVE file (PCM 8/16/24/32-bit or float 32/64, any channel count) to mono."""
    if not data:
        raise AudioError("empty_audio", "the audio is empty; record the question and send it again")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not_wav", "the audio is not a WAV file (RIFF/WAVE); send audio/wav")
    fmt: tuple[int, int, int, int, int] | None = None
    payload: bytes | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            fmt = _read_fmt(body)
        elif chunk_id == b"data":
            if size == 0 or size >= STREAMED_SIZE:  # the length was not known: the rest is data
                body = data[offset + 8 :]
            elif len(body) < size:  # decoding the part that came answered half a question
                raise AudioError(
                    "corrupt_audio",
                    f"the WAV file is cut short: its data chunk declares {size} bytes and "
                    f"{len(body)} arrived; send the whole recording",
                )
            payload = body
            break
        offset += 8 + size + (size & 1)
    if fmt is None:
        raise AudioError("corrupt_audio", "the WAV file has no 'fmt ' chunk; it may be truncated")
    if payload is None:
        raise AudioError("corrupt_audio", "the WAV file has no 'data' chunk; it may be truncated")
    kind, channels, rate, bits, block = fmt
    frames = len(payload) // block
    if frames == 0:
        raise AudioError("empty_audio", "the WAV file holds no samples; record again")
    seconds = frames / rate
    if seconds > limits.max_seconds:
        raise AudioError(
            "audio_too_long",
            f"the audio is {seconds:.1f} s long; ask in at most {limits.max_seconds:g} seconds",
        )
    if seconds < limits.min_seconds:
        raise AudioError(
            "audio_too_short",
            f"the audio is {seconds * 1000:.0f} ms long; hold the button while asking",
        )
    samples = _samples(payload[: frames * block], kind, bits, channels)
    return Audio(np.clip(samples, -1.0, 1.0).astype(np.float32), rate)


def _read_fmt(body: bytes) -> tuple[int, int, int, int, int]:
    if len(body) < 16:
        raise AudioError("corrupt_audio", "the WAV 'fmt ' chunk is too short")
    tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        if len(body) < 26:
            raise AudioError("corrupt_audio", "the WAV extensible format chunk is too short")
        (tag,) = struct.unpack_from("<H", body, 24)
    if tag not in (_PCM, _FLOAT):
        raise AudioError(
            "unsupported_audio",
            f"WAV encoding {tag} is not supported; send PCM or 32-bit float WAV",
        )
    valid = {_PCM: (8, 16, 24, 32), _FLOAT: (32, 64)}[tag]
    if bits not in valid:
        raise AudioError("unsupported_audio", f"{bits}-bit samples are not supported in this WAV")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError("unsupported_audio", f"{channels} channels; send 1 to {MAX_CHANNELS}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            "unsupported_audio", f"sample rate {rate} Hz; record at {MIN_RATE}-{MAX_RATE} Hz"
        )
    if block != channels * bits // 8:
        raise AudioError("corrupt_audio", "the WAV block size does not match its channels and bits")
    return tag, channels, rate, bits, block


def _samples(raw: bytes, kind: int, bits: int, channels: int) -> np.ndarray:
    if kind == _FLOAT:
        values = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float64)
        _check_float_peak(values)
    elif bits == 8:
        values = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8
        values = ints.astype(np.float64) / float(1 << 23)
    else:
        dtype = "<i2" if bits == 16 else "<i4"
        values = np.frombuffer(raw, dtype=dtype).astype(np.float64) / float(1 << (bits - 1))
    return values.reshape(-1, channels).mean(axis=1)


def _check_float_peak(values: np.ndarray) -> None:
    """Refuse float samples that no recording holds: NaN or infinity, and peaks over
    MAX_FLOAT_PEAK, which were clipped to full scale and decoded as if they were speech. Before
    the channels are averaged, so two channels of 1e308 are not called "not numbers" (their sum
    overflowed). Up to the bound, as before, the average is clipped to [-1, 1]: a float
    recording a little over full scale is still the question."""
    peak = float(np.max(np.abs(values)))  # NaN anywhere makes the peak NaN
    if not math.isfinite(peak):
        raise AudioError(
            "corrupt_audio",
            "the WAV file holds float samples that are not numbers (NaN or infinity): it is "
            "damaged; record the question again",
        )
    if peak > MAX_FLOAT_PEAK:
        raise AudioError(
            "corrupt_audio",
            f"the WAV file holds float samples up to {peak:.3g}, over {MAX_FLOAT_PEAK:g} times "
            "full scale (1.0): not audio, or not float samples; record the question again",
        )


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling by a rational factor (polyphase windowed sinc, Kaiser window).

    The low-pass sits at 0.47 of the lower of the two rates, so downsampling 48 kHz to 16 kHz
    folds no energy above 8 kHz back into the speech band.
    """
    if src_rate == dst_rate:
        return samples.astype(np.float32)
    up, down = _factors(src_rate, dst_rate)
    half = _filter_bank(up, down)[1]
    padded = np.concatenate([np.zeros(half), samples.astype(np.float64), np.zeros(half + 1)])
    return _outputs(padded, up, down, 0, (len(samples) * up) // down)


def _outputs(padded: np.ndarray, up: int, down: int, start: int, stop: int) -> np.ndarray:
    """Outputs ``start``..``stop - 1`` of resampling by ``up / down`` the input that ``padded``
    holds behind the filter's ``half`` leading zeros (and, at the end, enough input for them)."""
    bank, _ = _filter_bank(up, down)
    windows = np.lib.stride_tricks.sliding_window_view(padded, bank.shape[1])
    out = np.empty(max(0, stop - start), dtype=np.float64)
    # Outputs n, n + up, n + 2 up... share one filter phase and step ``down`` inputs apart, so each
    # phase is one strided matrix-vector product.
    for first in range(start, min(start + up, stop)):
        base, phase = divmod(first * down, up)
        count = len(range(first, stop, up))
        out[first - start :: up] = windows[base : base + count * down : down] @ bank[phase]
    return out.astype(np.float32)


#: Most filter phases kept for one rate pair. Every common rate needs at most 640 (11,025 Hz to
#: 16 kHz); an odd rate such as 191,999 Hz would need 16,000 phases, a 75 MB table per rate.
MAX_PHASES = 640


def _factors(src_rate: int, dst_rate: int) -> tuple[int, int]:
    """(up, down) with up / down = dst_rate / src_rate, or its nearest fraction with at most
    ``MAX_PHASES`` phases: at worst (15,987 Hz) a pitch error of 0.08 %, far below the
    differences between speakers."""
    ratio = Fraction(src_rate, dst_rate)
    if ratio.denominator > MAX_PHASES:
        ratio = ratio.limit_denominator(MAX_PHASES)
    return ratio.denominator, ratio.numerator


@lru_cache(maxsize=16)
def _filter_bank(
    up: int, down: int, zero_crossings: int = 24, beta: float = 8.0
) -> tuple[np.ndarray, int]:
    """Filter taps per output phase: ``bank[p, k]`` weighs input sample ``base - half + k``."""
    cutoff = 0.47 / max(up, down)  # in cycles per sample of the upsampled signal
    half = int(math.ceil(zero_crossings / (2 * cutoff) / up))  # half width in input samples
    taps = 2 * half + 1
    reach = (half + 1) * up  # the window falls to zero just beyond the outermost tap
    # input sample (base - half + k) lies (k - half) * up - p upsampled samples from output phase p
    t = (np.arange(taps)[None, :] - half) * up - np.arange(up)[:, None]
    window = np.i0(beta * np.sqrt(1.0 - (t / reach) ** 2)) / np.i0(beta)
    bank = 2 * cutoff * np.sinc(2 * cutoff * t) * window * up
    return bank, half


def to_pcm16(samples: np.ndarray) -> bytes:
    """Little-endian signed 16-bit PCM, what both engines take."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def prepare(audio: Audio, model_rate: int) -> bytes:
    """The audio as the model wants it: mono 16-bit PCM at ``model_rate``."""
    return to_pcm16(resample(audio.samples, audio.rate, model_rate))


class StreamResampler:
    """Resampling for audio that arrives in pieces (the kiosk's WebSocket).

    Resampling each piece alone would click at every boundary, so the input is kept and each
    output sample is released once the filter has seen all the input it depends on. Only the
    new outputs are computed for each piece: recomputing from the start made a question's cost
    grow with the square of its pieces, on the event loop.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._up, self._down = _factors(src_rate, dst_rate)
        self._same = src_rate == dst_rate
        self._half = 0 if self._same else _filter_bank(self._up, self._down)[1]
        self._buffer = np.zeros(max(1024, 2 * self._half + 2), dtype=np.float64)
        self._length = self._half  # the filter's leading zeros, then the input
        self._sent = 0

    def accept(self, samples: np.ndarray) -> np.ndarray:
        """The output samples that the input so far fully determines."""
        if self._same:
            return samples.astype(np.float32)
        self._append(samples)
        inputs = self._length - self._half
        ready = max(0, (inputs - self._half) * self._up // self._down)
        return self._release(ready)

    def flush(self) -> np.ndarray:
        """Everything not yet released (the end of the input is padded with silence)."""
        if self._same:
            return np.zeros(0, dtype=np.float32)
        inputs = self._length - self._half
        self._append(np.zeros(self._half + 1))
        return self._release(inputs * self._up // self._down)

    def _append(self, samples: np.ndarray) -> None:
        end = self._length + len(samples)
        if end > len(self._buffer):
            grown = np.zeros(max(end, 2 * len(self._buffer)), dtype=np.float64)
            grown[: self._length] = self._buffer[: self._length]
            self._buffer = grown
        self._buffer[self._length : end] = samples
        self._length = end

    def _release(self, upto: int) -> np.ndarray:
        if upto <= self._sent:
            return np.zeros(0, dtype=np.float32)
        out = _outputs(self._buffer[: self._length], self._up, self._down, self._sent, upto)
        self._sent = upto
        return out


def frames_20ms(samples: np.ndarray, rate: int) -> np.ndarray:
    """``samples`` as rows of whole 20 ms frames (a short tail is left out), as float64."""
    frame = max(1, rate // 50)
    return samples[: len(samples) // frame * frame].reshape(-1, frame).astype(np.float64)


def frame_energies(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mean square of each whole 20 ms frame of ``samples``."""
    return (frames_20ms(samples, rate) ** 2).mean(axis=1)


def active_level(samples: np.ndarray, rate: int) -> float:
    """RMS of the frames within 20 dB of the loudest 20 ms frame."""
    energy = frame_energies(samples, rate)
    if energy.size == 0 or energy.max() == 0:
        return 0.0
    return float(np.sqrt(energy[energy >= energy.max() * 0.01].mean()))
