"""Fit the quiet before and after a question to what each engine needs: pocketsphinx gets it cut
off, Vosk gets at least 0.3 s of it before the words and 0.45 s after.

Why cut (pocketsphinx): a kiosk recording starts before the customer speaks and stops after, and
a grammar decoder spends as much time on those quiet stretches as on the words; worse, every
quiet frame is a chance for it to hear a filler word or a short product name in the noise.
Cutting them, with a margin so soft first and last sounds ("f", "s", "h") survive, made
pocketsphinx both faster and more accurate (see ``voice/README.md``).

Why pad (Vosk): its online feature normalisation and speaker vector learn from the lead-in, and
Korean top-1 fell from 53 % to 42 % with it cut. What it needs most is quiet *after* the words:
plain ``espeak-ng --stdout`` files (speech from 0.05 s, 0.3 s of quiet after it) were heard with
a word in the onset of the second hearing ("우유 바나나 어디에 있어요", see
``VoskEngine._run``) and 1 to 3 of the 12 test products came out right; with the tail made up
to 0.45-0.8 s, 8 or 9 (the lead made no difference between 0.1 and 0.3 s). Made up to
0.6 s, the bench's questions lost 2 of 81 (Vosk's answers move with small changes), so 0.45 s
is kept, the least that mends the short tails. Questions that already have
that much quiet (the bench's and the held-out ones) are left as they were.

Both run after noise suppression, which needs the quiet frames to learn the noise and leaves the
noise well below the speech, so a level threshold finds the words even in a noisy shop.
"""

from __future__ import annotations

import numpy as np

#: Length of the frames whose level is compared, in seconds.
FRAME_S = 0.01
#: Kept before the first and after the last frame above the threshold, in seconds.
MARGIN_S = 0.25
#: A frame counts as speech when it is this far above the quiet level (10th percentile)...
ABOVE_QUIET_DB = 6.0
#: ...and no further than this below the loud level (98th percentile).
BELOW_LOUD_DB = 35.0
#: Recordings shorter than this are left alone: too few frames to tell quiet from loud.
MIN_S = 0.2
#: Quiet that Vosk gets before the speech, and after it, in seconds.
LEAD_S = 0.3
TAIL_S = 0.45
#: The least level of that quiet, in 16-bit steps (a recording whose quiet is digital silence).
MIN_LEVEL = 2.0
_SEED = 20_171


def trim_quiet(pcm: bytes, rate: int) -> bytes:
    """16-bit mono PCM without its quiet lead-in and tail (``MARGIN_S`` of each is kept)."""
    span = _speech_span(pcm, rate)
    if span is None:
        return pcm
    first, last, frames, hop = span
    margin = int(MARGIN_S / FRAME_S)
    start, stop = max(0, first - margin), min(frames, last + 1 + margin)
    end = len(pcm) // 2 if stop == frames else stop * hop
    return pcm[start * hop * 2 : end * 2]


def pad_quiet(pcm: bytes, rate: int) -> bytes:
    """16-bit mono PCM with at least ``LEAD_S`` of quiet before the speech and ``TAIL_S`` after:
    white noise at the level of the recording's quiet frames (its own floor) is added where it
    has less."""
    span = _speech_span(pcm, rate)
    if span is None:
        return pcm
    first, last, frames, hop = span
    before = max(0, int(LEAD_S / FRAME_S) - first)
    after = max(0, int(TAIL_S / FRAME_S) - (frames - 1 - last))
    if not before and not after:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    level = max(float(np.sqrt(np.percentile(_frame_power(samples, hop), 10))), MIN_LEVEL)
    noise = np.random.default_rng(_SEED).standard_normal((before + after) * hop) * level
    padded = np.concatenate([noise[: before * hop], samples, noise[before * hop :]])
    return np.clip(np.round(padded), -32768, 32767).astype("<i2").tobytes()


def _frame_power(samples: np.ndarray, hop: int) -> np.ndarray:
    frames = len(samples) // hop
    return (samples[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1)


def _speech_span(pcm: bytes, rate: int) -> tuple[int, int, int, int] | None:
    """(first speech frame, last speech frame, frame count, samples per frame), or None for a
    recording too short to tell or with nothing that stands out as speech."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    hop = max(1, int(FRAME_S * rate))
    frames = len(samples) // hop
    if frames * hop < MIN_S * rate:
        return None
    level = 10.0 * np.log10(_frame_power(samples, hop) + 1e-3)
    quiet, loud = np.percentile(level, (10, 98))
    speech = np.flatnonzero(level > max(quiet + ABOVE_QUIET_DB, loud - BELOW_LOUD_DB))
    if len(speech) == 0:
        return None
    return int(speech[0]), int(speech[-1]), frames, hop
