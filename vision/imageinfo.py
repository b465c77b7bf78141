"""Reads an image's format and pixel size from its header, without decoding it.

Why: OpenCV allocates the whole bitmap before it looks at the pixels, so a 100-megapixel photo or a
PNG decompression bomb (a few kilobytes declaring 50,000 x 50,000 pixels) would take gigabytes. The
header tells the size for the cost of a few bytes, so the limit is enforced before any decoding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vision.errors import ImageError

JPEG, PNG, WEBP = "jpeg", "png", "webp"
#: The file name extension a stored image of each format gets (the web server's content type).
EXTENSIONS = {JPEG: ".jpg", PNG: ".png", WEBP: ".webp"}

# Start-of-frame markers that carry the frame size (all SOFn except DHT, JPG and DAC).
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: the container format and the stored width and height in pixels."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        """Width times height, the figure the decoding limit is checked against."""
        return self.width * self.height


def sniff_format(data: bytes) -> str:
    """The image format from its magic bytes, or an ImageError naming the accepted ones."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    raise ImageError(
        "the upload is not a JPEG, PNG or WebP image; send the photo file itself",
        first_bytes=data[:8].hex(),
    )


def read_info(data: bytes) -> ImageInfo:
    """Parse the header of a JPEG, PNG or WebP file and return its format and size."""
    if not data:
        raise ImageError("the upload is empty; send the photo's bytes")
    kind = sniff_format(data)
    if kind == JPEG:
        width, height = _jpeg_size(data)
    elif kind == PNG:
        width, height = _png_size(data)
    else:
        width, height = _webp_size(data)
    if width <= 0 or height <= 0:
        raise ImageError(f"the {kind.upper()} header declares an empty image ({width}x{height})")
    return ImageInfo(kind, width, height)


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageError("the PNG file is damaged: its IHDR header is missing")
    return struct.unpack(">II", data[16:24])


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            raise ImageError("the JPEG file is damaged: a header segment is malformed")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF_MARKERS:
            if pos + 9 > end:
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker in (0xDA, 0xD9):  # scan data or end before any frame header
            break
        pos += 2 + length
    raise ImageError("the JPEG file is damaged or cut short: it has no frame header")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    body = data[20:]
    if chunk == b"VP8X" and len(body) >= 10:
        width = 1 + int.from_bytes(body[4:7], "little")
        height = 1 + int.from_bytes(body[7:10], "little")
        return width, height
    if chunk == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    raise ImageError("the WebP file is damaged: its VP8 header is missing")


def jpeg_is_complete(data: bytes) -> bool:
    """True when an end-of-image marker follows the first scan.

    Why: libjpeg fills a cut-off JPEG with grey and reports success, so a truncated upload would be
    searched as half a photo. Inside scan data 0xFF is always stuffed (FF 00) or a restart marker,
    so FF D9 after the first scan can only be the real end marker.
    """
    scan = data.find(b"\xff\xda")
    return scan >= 0 and data.rfind(b"\xff\xd9") > scan
