"""A recording with exact digital silence gets a faint noise floor before decoding.

Why: text-to-speech output, a file edited in an audio editor and the first frames of a browser's
microphone stream hold runs of samples that are exactly zero. Both engines normalise their
features per utterance (cepstral mean, energy, Vosk's speaker vector), and a frame of pure zeros
has a log energy of minus infinity clamped to the model's floor: the normalisation is pulled far
from anything the acoustic models saw in training, and words next to the silence are misheard. A
real microphone never gives exact zeros, so recordings without them pass through unchanged and
answers to them do not move.

Why a floor under the whole recording, 45 dB below the speech, rather than a hiss in the zero
runs only: held-out questions sent as plain TTS files (about a third of their samples exact
zeros), English with pocketsphinx (81 products, 30 off-catalogue things, 8 voices) and Korean with
Vosk (81 products, 16 off-catalogue, 3 voices, each question heard twice), top-1 and false
accepts:

- unchanged: English 0.864 / 0.23, Korean 0.49 / 0.13
- zero runs filled with a 2-LSB hiss: English 0.926-0.938 / 0.17, Korean 0.52 / 0.19
- a white floor 45 dB below the active speech level: English 0.963 / 0.17-0.20, Korean 0.62-0.63
  / 0.19-0.31 (two noise seeds)

the last being what the same questions score recorded with a faint noise floor, as a kiosk
microphone records them. The noise is drawn from a fixed seed, so the same recording always gets
the same answer.
"""

from __future__ import annotations

import numpy as np

from voice.audio import active_level, frame_energies, frames_20ms

#: Shortest run of exact zeros that counts as digital silence: 1 ms at 16 kHz. Shorter runs
#: are zero crossings of real signals.
MIN_RUN = 16
#: The floor's level below the speech's active level, in dB.
FLOOR_DB = 45.0
#: The least floor, in 16-bit steps, for a recording with almost nothing but silence in it.
MIN_FLOOR_LSB = 2.0
#: A recording whose loudest 20 ms stays under this RMS (16-bit steps, -60 dBFS) holds no
#: question: a muted or unplugged microphone, or the button let go at once. Speech at arm's
#: length reads 30-40 dB above it, a quiet shop about 10.
SPEECHLESS_LSB = 32.0
#: Speech band (Hz) whose loudness over the recording tells a voice from steady noise.
SPEECH_BAND = (300.0, 3400.0)
#: A recording whose loudest 20 ms in the speech band is less than this far (dB) above its
#: quiet frames (the 20th percentile) holds a steady hiss or hum, not a question. Measured
#: (scratch, the bench's 81 products + held-out questions, 8 voices, 486 clips; 400 noise-only
#: recordings of 1-6 s at -70 to -20 dBFS): noise alone 2.5 dB median, 5.1 at most (pink);
#: speech at 10 dB SNR 9.4 dB at least (white), 12.1 (pink); at 5 dB SNR 5.8 / 7.5.
MIN_SPEECH_CONTRAST_DB = 6.0
_SEED = 20_170


def has_digital_silence(samples: np.ndarray) -> bool:
    """Whether 16-bit ``samples`` hold a run of ``MIN_RUN`` or more exact zeros."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], samples == 0, [0])).astype(np.int8)))
    return bool(((edges[1::2] - edges[0::2]) >= MIN_RUN).any())


def holds_no_speech(pcm: bytes, rate: int) -> bool:
    """Whether 16-bit mono ``pcm`` holds no question: too quiet throughout, or nothing in the
    speech band rises above a steady noise (a kiosk microphone's hiss, a fridge's hum).

    Why: decoded anyway, the engines hear a short word in the noise ("oh", "who"), and the
    kiosk would say it has no "who" instead of asking the customer to speak again."""
    samples = np.frombuffer(pcm, dtype="<i2")
    energy = frame_energies(samples, rate)
    if energy.size == 0 or float(np.sqrt(energy.max())) < SPEECHLESS_LSB:
        return True
    return speech_contrast_db(samples, rate) < MIN_SPEECH_CONTRAST_DB


def speech_contrast_db(samples: np.ndarray, rate: int) -> float:
    """How far (dB) the loudest 20 ms frame rises above the quiet frames (20th percentile) in
    the speech band: a voice comes and goes there, steady noise does not."""
    frames = frames_20ms(samples, rate)
    if len(frames) < 2:
        return 0.0
    power = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), axis=1)) ** 2
    freqs = np.fft.rfftfreq(frames.shape[1], 1.0 / rate)
    band = power[:, (freqs >= SPEECH_BAND[0]) & (freqs <= SPEECH_BAND[1])].sum(axis=1)
    quiet = max(float(np.percentile(band, 20)), 1e-12)
    return float(10.0 * np.log10(max(float(band.max()), 1e-12) / quiet))


def add_floor_under_silence(pcm: bytes, rate: int) -> bytes:
    """16-bit mono PCM, with a faint white noise floor added when it holds digital silence."""
    samples = np.frombuffer(pcm, dtype="<i2")
    if not has_digital_silence(samples):
        return pcm
    level = max(active_level(samples, rate) * 10 ** (-FLOOR_DB / 20), MIN_FLOOR_LSB)
    noise = np.random.default_rng(_SEED).standard_normal(len(samples)) * level
    floored = np.round(samples.astype(np.float64) + noise)
    return np.clip(floored, -32768, 32767).astype("<i2").tobytes()
