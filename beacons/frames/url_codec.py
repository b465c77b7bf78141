"""Eddystone-URL compression: a scheme prefix byte, then printable ASCII where bytes 0x00-0x0D stand
for common domain endings (".com/", ".org" ...). Kept apart from the frame layout because the
fleet renderer also uses it to check that a configured URL fits in one advertisement."""

from __future__ import annotations

from beacons.errors import FrameError

SCHEMES: tuple[str, ...] = ("http://www.", "https://www.", "http://", "https://")
EXPANSIONS: tuple[str, ...] = (
    ".com/",
    ".org/",
    ".edu/",
    ".net/",
    ".info/",
    ".biz/",
    ".gov/",
    ".com",
    ".org",
    ".edu",
    ".net",
    ".info",
    ".biz",
    ".gov",
)
MAX_ENCODED_BODY = 17
# Longest expansions first, so ".com/" wins over ".com" when both match.
_BY_LENGTH = sorted(range(len(EXPANSIONS)), key=lambda code: -len(EXPANSIONS[code]))


def encode_url(url: str) -> bytes:
    """Compress ``url`` into scheme byte + body. Raises FrameError if it has no supported scheme,
    contains characters outside printable ASCII, or does not fit in the 17-byte body."""
    for code in sorted(range(len(SCHEMES)), key=lambda c: -len(SCHEMES[c])):
        if url.startswith(SCHEMES[code]):
            scheme, rest = code, url[len(SCHEMES[code]) :]
            break
    else:
        raise FrameError(f"Eddystone-URL must start with http:// or https://, got {url!r}")
    body = bytearray()
    i = 0
    while i < len(rest):
        for code in _BY_LENGTH:
            if rest.startswith(EXPANSIONS[code], i):
                body.append(code)
                i += len(EXPANSIONS[code])
                break
        else:
            char = rest[i]
            if not 0x21 <= ord(char) <= 0x7E:
                raise FrameError(
                    f"Eddystone-URL can carry only printable ASCII, {url!r} has {char!r}"
                )
            body.append(ord(char))
            i += 1
    if len(body) > MAX_ENCODED_BODY:
        raise FrameError(
            f"{url!r} encodes to {len(body)} bytes; Eddystone-URL holds at most "
            f"{MAX_ENCODED_BODY}: use a shorter URL (a redirect)"
        )
    return bytes([scheme]) + bytes(body)


def decode_url(data: bytes) -> str:
    """Expand scheme byte + body into the URL. Raises FrameError on reserved codes."""
    if not data:
        raise FrameError("Eddystone-URL has no scheme byte")
    if data[0] >= len(SCHEMES):
        raise FrameError(f"Eddystone-URL scheme byte 0x{data[0]:02x} is reserved (0x00-0x03)")
    if len(data) - 1 > MAX_ENCODED_BODY:
        raise FrameError(
            f"Eddystone-URL body is {len(data) - 1} bytes, at most {MAX_ENCODED_BODY} allowed"
        )
    parts = [SCHEMES[data[0]]]
    for byte in data[1:]:
        if byte < len(EXPANSIONS):
            parts.append(EXPANSIONS[byte])
        elif 0x21 <= byte <= 0x7E:
            parts.append(chr(byte))
        else:
            raise FrameError(f"Eddystone-URL byte 0x{byte:02x} is reserved")
    return "".join(parts)
