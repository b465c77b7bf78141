"""RNNoise, Xiph's recurrent-network noise suppressor, through the C library of the pyrnnoise
wheel.

Why a network: the spectral estimator of :mod:`voice.denoise` knows only the noise's average
spectrum, so broadband hiss (a fan, an air vent) stays in every band the speech leaves free, and
pocketsphinx hears words in it. RNNoise was trained on speech in many noises and tells, band by
band and 10 ms by 10 ms, speech from noise (measured in :mod:`voice.denoise`).

Why the library and not the package: ``import pyrnnoise`` pulls in FFmpeg (PyAV) and
matplotlib for its file reader, about 15 packages a hub never needs. The hub needs three calls
of the library (create a state, clean a 10 ms frame at 48 kHz, free the state), so setup installs
the wheel without its dependencies and this module loads ``librnnoise.so`` from it with ctypes.
The wheel exists for x86_64 and aarch64 Linux; elsewhere (32-bit Raspberry Pi OS)
:func:`available` is false and the spectral estimator does the work.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import weakref
from pathlib import Path

import numpy as np

from voice.audio import StreamResampler, resample

#: The rate and frame length RNNoise works at (10 ms frames at 48 kHz).
RATE = 48_000
FRAME = 480
#: RNNoise's output lags its input by two frames (its analysis window overlaps the frame before).
DELAY = 2 * FRAME
_FLOATS = ctypes.POINTER(ctypes.c_float)


def library_path() -> Path | None:
    """Where the pyrnnoise wheel put ``librnnoise.so``, found without importing the package."""
    spec = importlib.util.find_spec("pyrnnoise")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "librnnoise.so"
    return path if path.is_file() else None


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str | None]:
    """The library, or why it cannot be used here (said once, by doctor and the hub's log)."""
    path = library_path()
    if path is None:
        return None, "the RNNoise library is not installed (the pyrnnoise wheel)"
    try:
        lib = ctypes.CDLL(str(path))
        lib.rnnoise_create.argtypes = [ctypes.c_void_p]
        lib.rnnoise_create.restype = ctypes.c_void_p
        lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
        lib.rnnoise_destroy.restype = None
        lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, _FLOATS, _FLOATS]
        lib.rnnoise_process_frame.restype = ctypes.c_float
        frame = lib.rnnoise_get_frame_size()
    except (OSError, AttributeError) as exc:
        return None, f"the RNNoise library {path} cannot be loaded: {exc}"
    if frame != FRAME:
        return None, f"the RNNoise library {path} works in frames of {frame} samples, not {FRAME}"
    return lib, None


def problem() -> str | None:
    """Why RNNoise cannot be used on this machine, or None when it can."""
    return _load()[1]


def available() -> bool:
    """Whether the RNNoise library is installed and loads on this machine."""
    return problem() is None


class Denoiser:
    """RNNoise over one recording, fed whole or in pieces as it arrives.

    A kiosk streams its question as the customer speaks: cleaning each piece as it comes leaves
    only the decoding for after the last word (RNNoise costs as much CPU time as the decoding).
    RNNoise is causal, so pieces cleaned one after another give, bit for bit, what the whole
    recording gives (:func:`denoise` is the whole recording as one piece).
    """

    def __init__(self, rate: int) -> None:
        lib, why = _load()
        if lib is None:
            raise RuntimeError(f"{why}; make setup installs it")
        self._lib = lib
        self._rate = rate
        self._up = StreamResampler(rate, RATE)
        state = lib.rnnoise_create(None)
        self._state = state
        # a stream the client abandons is never finished: its state is freed with it
        self._free = weakref.finalize(self, lib.rnnoise_destroy, state)
        self._pending = np.zeros(0, dtype=np.float32)  # under one frame, at 48 kHz
        self._cleaned: list[np.ndarray] = []
        self._received = 0

    def accept(self, samples: np.ndarray) -> None:
        """Clean the next piece (16-bit scale, at the rate given)."""
        self._check_open()
        self._received += len(samples)
        self._clean(self._up.accept(samples))

    def finish(self) -> np.ndarray:
        """Everything fed, cleaned: as long as the input and at its rate."""
        self._check_open()
        self._clean(self._up.flush())
        length = sum(len(c) for c in self._cleaned) + len(self._pending)
        self._clean(np.zeros(DELAY + FRAME, dtype=np.float32))  # past RNNoise's lag
        self._free()
        cleaned = np.concatenate(self._cleaned)[DELAY : DELAY + length]
        back = resample(cleaned, RATE, self._rate)
        return np.pad(back, (0, max(0, self._received - len(back))))[: self._received]

    def _check_open(self) -> None:
        if not self._free.alive:  # its state is freed: using it would crash the process
            raise RuntimeError("this recording has been finished; start a new Denoiser")

    def _clean(self, samples: np.ndarray) -> None:
        data = np.concatenate([self._pending, samples.astype(np.float32)])
        whole = len(data) // FRAME * FRAME
        for start in range(0, whole, FRAME):
            frame = data[start : start + FRAME].ctypes.data_as(_FLOATS)
            self._lib.rnnoise_process_frame(self._state, frame, frame)
        self._cleaned.append(data[:whole])
        self._pending = data[whole:]


def denoise(samples: np.ndarray, rate: int) -> np.ndarray:
    """``samples`` (16-bit scale, any rate) with the noise taken out; same length and rate.

    Each call has its own state, so calls on several threads do not mix; ctypes lets go of the
    GIL while a frame is cleaned.
    """
    denoiser = Denoiser(rate)
    denoiser.accept(samples)
    return denoiser.finish()
