"""The one preprocessing path: it must match the transform the weights were trained with, honour
EXIF orientation, and refuse unsafe or damaged files before decoding them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.vision.conftest import jpeg, photos, png_bomb, with_exif_orientation, with_jpeg_size
from vision.errors import ImageError, ImageTooLargeError
from vision.imageinfo import read_info
from vision.preprocess import Preprocessor


def reference_transform(path: str, size: int = 224) -> np.ndarray:
    """The weights' transform written out independently: OpenCV decode, BGR -> RGB, shorter side
    to size / 0.875 with area interpolation, centre crop, (x - 127) / 128, NCHW."""
    rgb = cv2.imread(path, cv2.IMREAD_COLOR)[:, :, ::-1]
    height, width = rgb.shape[:2]
    short = round(size / 0.875)
    scale = short / min(height, width)
    resized = cv2.resize(
        rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
    )
    top = (resized.shape[0] - size) // 2
    left = (resized.shape[1] - size) // 2
    crop = resized[top : top + size, left : left + size].astype(np.float32)
    return ((crop - 127.0) / 128.0).transpose(2, 0, 1)[None]


@pytest.mark.parametrize("split", ["train.txt", "val.txt"])
def test_matches_the_reference_transform_on_dataset_photos(split: str) -> None:
    for photo in photos(split, 45, 2):
        ours = Preprocessor()(photo.path.read_bytes())
        assert ours.shape == (1, 3, 224, 224) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, reference_transform(str(photo.path)), atol=1e-6)


def test_channels_are_rgb_not_bgr() -> None:
    red = np.zeros((300, 300, 3), np.uint8)
    red[:, :, 2] = 255  # OpenCV stores BGR: this is pure red
    x = Preprocessor()(jpeg(red, 100))
    assert x[0, 0].mean() > 0.9 and x[0, 2].mean() < -0.9


def test_exif_orientation_is_applied() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    image[:, :200] = 255  # left half white
    upright = Preprocessor().decode(jpeg(image))
    rotated = Preprocessor().decode(with_exif_orientation(jpeg(image), 6))  # rotate 90 clockwise
    assert upright.shape[:2] == (300, 400)
    assert rotated.shape[:2] == (400, 300)
    assert rotated[:150].mean() > 200 and rotated[250:].mean() < 50  # white half now on top


def test_large_jpeg_decodes_reduced_but_keeps_enough_pixels() -> None:
    big = cv2.resize(cv2.imread(str(photos("val.txt", 6, 1)[0].path)), (4000, 3000))
    decoded = Preprocessor().decode(jpeg(big))
    assert decoded.shape[:2] == (375, 500)  # 1/8 scale in the JPEG decoder
    assert min(decoded.shape[:2]) >= Preprocessor().short_side


def test_png_and_webp_give_the_same_input_as_the_source() -> None:
    bgr = cv2.imread(str(photos("val.txt", 60, 1)[0].path))
    ok_png, png = cv2.imencode(".png", bgr)
    ok_webp, webp = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert ok_png and ok_webp
    a = Preprocessor()(png.tobytes())
    b = Preprocessor()(webp.tobytes())
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert read_info(webp.tobytes()).format == "webp"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"%PDF-1.7 definitely not a photo", "not a JPEG, PNG or WebP"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "damaged or cut short"),
    ],
)
def test_unusable_bytes_are_refused_with_a_reason(data: bytes, words: str) -> None:
    with pytest.raises(ImageError, match=words):
        Preprocessor().decode(data)


def test_truncated_jpeg_is_refused() -> None:
    data = photos("val.txt", 6, 1)[0].path.read_bytes()
    with pytest.raises(ImageError, match="cut short"):
        Preprocessor().decode(data[: len(data) // 2])


def test_truncated_png_is_refused() -> None:
    ok, png = cv2.imencode(".png", np.full((64, 64, 3), 90, np.uint8))
    assert ok
    with pytest.raises(ImageError, match="damaged"):
        Preprocessor().decode(png.tobytes()[:60])


def test_hundred_megapixel_jpeg_is_refused_from_its_header() -> None:
    data = with_jpeg_size(jpeg(np.zeros((64, 64, 3), np.uint8)), 10_000, 10_000)
    with pytest.raises(ImageTooLargeError, match="100.0 megapixels") as caught:
        Preprocessor(max_pixels=50_000_000).decode(data)
    assert caught.value.details["width"] == 10_000


def test_png_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = png_bomb(12_000)
    assert len(bomb) < 1_000_000
    with pytest.raises(ImageTooLargeError, match="144.0 megapixels"):
        Preprocessor(max_pixels=50_000_000).decode(bomb)


def test_a_strip_is_refused_before_it_is_scaled_up() -> None:
    """Why: a 20000 x 1 JPEG is 6 kB and 0.02 megapixels, but scaling its short side up to the
    crop made a row of gigabytes (60000 x 2 ran out of memory)."""
    strip = jpeg(np.full((1, 20_000, 3), 128, np.uint8))
    assert len(strip) < 20_000
    with pytest.raises(ImageError, match="20000x1 pixels, a strip"):
        Preprocessor().decode(strip)
    panorama = jpeg(np.full((300, 1_500, 3), 128, np.uint8))  # 5:1 is still a photo
    assert Preprocessor()(panorama).shape == (1, 3, 224, 224)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        Preprocessor(size=225)
    with pytest.raises(ValueError, match="crop fraction"):
        Preprocessor(crop_fraction=0.2)
