"""The browser's fake camera and microphone: a product photo as a Y4M video frame and a spoken
question made by espeak-ng, with a faint noise floor (exact digital silence depresses speech
engines) and silence padding around the words."""

from __future__ import annotations

import io
import subprocess
import wave
from pathlib import Path

import cv2
import numpy as np

SAMPLE_RATE = 16000
LEAD_S = 0.4
TAIL_S = 0.8
NOISE_STD = 40.0  # in 16-bit units: about -58 dBFS


def spoken_wav(text: str, target: Path, voice: str = "en-us") -> float:
    """Write ``text`` spoken at 16 kHz mono to ``target``; returns its length in seconds."""
    raw = subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "--stdout", text],
                         capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(raw)) as source:
        rate = source.getframerate()
        speech = np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)
    count = int(len(speech) * SAMPLE_RATE / rate)
    resampled = np.interp(np.arange(count) * rate / SAMPLE_RATE, np.arange(len(speech)), speech)
    padded = np.concatenate([np.zeros(int(LEAD_S * SAMPLE_RATE)), resampled,
                             np.zeros(int(TAIL_S * SAMPLE_RATE))])
    padded += np.random.default_rng(7).normal(0.0, NOISE_STD, len(padded))
    samples = np.clip(padded, -32768, 32767).astype(np.int16)
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.tobytes())
    return len(samples) / SAMPLE_RATE


def camera_y4m(photo: Path, target: Path, width: int = 640, height: int = 480) -> None:
    """Write ``photo`` letterboxed on white as one frame of a Y4M video (Chromium loops it)."""
    image = cv2.imread(str(photo))
    assert image is not None, f"cannot read {photo}"
    scale = min(width / image.shape[1], height / image.shape[0])
    size = (int(image.shape[1] * scale) // 2 * 2, int(image.shape[0] * scale) // 2 * 2)
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), 255, np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    frame[top:top + size[1], left:left + size[0]] = image
    yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
    header = f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\nFRAME\n".encode()
    target.write_bytes(header + yuv.tobytes())
