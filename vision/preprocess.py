"""Photo bytes -> the network's input tensor. Enrolment, search, training and the eval all call this
one path, so a product's reference photos and a shopper's photo are seen the same way.

What the weights expect (measured, see the model's provenance): RGB channel order (OpenCV decodes
BGR), values scaled as (x - 127) / 128, and a centre crop of 0.875 of the shorter side resized to
the model's input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.errors import ImageError, ImageTooLargeError
from vision.imageinfo import JPEG, jpeg_is_complete, read_info

# cv2's reduced JPEG decoders scale by 1/2, 1/4 or 1/8 inside the DCT: a 12 MP phone photo decodes
# in a third of the time and a sixteenth of the memory.
_REDUCED = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)

#: Longest side over shortest side a photo may have. Why: the shorter side is scaled up to
#: ``short_side`` before the crop, so a 20000 x 1 strip (a 6 kB JPEG, far under the pixel limit)
#: became a 5.8-megapixel-wide row of gigabytes. A phone panorama is about 4:1.
MAX_ASPECT = 20

PIXEL_MEAN = 127.0
PIXEL_SCALE = 128.0


@dataclass(frozen=True)
class Preprocessor:
    """Decodes a photo with the safety limits and turns it into the model's NCHW float input."""

    size: int = 224
    crop_fraction: float = 0.875
    max_pixels: int = 40_000_000

    def __post_init__(self) -> None:
        if self.size < 32 or self.size % 32:
            raise ValueError(f"input size must be a multiple of 32 of at least 32, not {self.size}")
        if not 0.5 <= self.crop_fraction <= 1.0:
            raise ValueError(f"crop fraction must lie in [0.5, 1], not {self.crop_fraction}")
        if self.max_pixels < 1:
            raise ValueError("the pixel limit must be positive")

    @property
    def short_side(self) -> int:
        """The shorter side an image is resized to before the centre crop."""
        return round(self.size / self.crop_fraction)

    def decode(self, data: bytes) -> np.ndarray:
        """Decode JPEG/PNG/WebP bytes into an upright RGB uint8 image, refusing what is unsafe.

        The pixel count and shape are checked from the header before anything is allocated;
        EXIF orientation is applied by OpenCV's decoder; large JPEGs decode at a reduced scale
        that still leaves the shorter side at least ``short_side`` pixels.
        """
        info = read_info(data)
        if info.pixels > self.max_pixels:
            raise ImageTooLargeError(
                f"the image has {info.width}x{info.height} = {info.pixels / 1e6:.1f} megapixels; "
                f"the limit is {self.max_pixels / 1e6:.1f}; send a smaller photo",
                width=info.width,
                height=info.height,
                max_pixels=self.max_pixels,
            )
        if max(info.width, info.height) > MAX_ASPECT * min(info.width, info.height):
            raise ImageError(
                f"the image is {info.width}x{info.height} pixels, a strip rather than a photo "
                f"(at most {MAX_ASPECT} times longer than wide); send a photo of the product"
            )
        flag = cv2.IMREAD_COLOR
        if info.format == JPEG:
            if not jpeg_is_complete(data):
                raise ImageError("the JPEG file is cut short (no end marker); send the whole file")
            shorter = min(info.width, info.height)
            for factor, reduced in _REDUCED:
                if shorter // factor >= self.short_side:
                    flag = reduced
                    break
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
        if bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.size == 0:
            raise ImageError(f"the {info.format.upper()} file could not be decoded; it is damaged")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def resize_short(self, rgb: np.ndarray, short_side: int | None = None) -> np.ndarray:
        """Resize so the shorter side is ``short_side`` pixels, keeping the aspect ratio."""
        target = short_side or self.short_side
        height, width = rgb.shape[:2]
        scale = target / min(height, width)
        new_w = max(target, round(width * scale))
        new_h = max(target, round(height * scale))
        if (new_w, new_h) == (width, height):
            return rgb
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        return cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)

    def crop_centre(self, rgb: np.ndarray) -> np.ndarray:
        """The centred ``size`` x ``size`` square of an image resized by ``resize_short``."""
        height, width = rgb.shape[:2]
        top = (height - self.size) // 2
        left = (width - self.size) // 2
        return rgb[top : top + self.size, left : left + self.size]

    def to_input(self, rgb: np.ndarray) -> np.ndarray:
        """An upright RGB uint8 image -> the (1, 3, size, size) float32 tensor the model takes."""
        return normalise(self.crop_centre(self.resize_short(rgb)))[None]

    def __call__(self, data: bytes) -> np.ndarray:
        """Photo bytes -> model input, the whole path."""
        return self.to_input(self.decode(data))


def normalise(rgb_square: np.ndarray) -> np.ndarray:
    """HWC RGB uint8 -> CHW float32 scaled (x - 127) / 128, the scaling the weights learnt."""
    chw = np.ascontiguousarray(rgb_square.transpose(2, 0, 1), dtype=np.float32)
    chw -= PIXEL_MEAN
    chw /= PIXEL_SCALE
    return chw
