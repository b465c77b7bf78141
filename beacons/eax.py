"""AES-EAX authenticated encryption (Bellare, Rogaway, Wagner, "The EAX Mode of Operation").

Eddystone's encrypted telemetry (ETLM) is sealed with AES-EAX under the beacon's identity key.
The ``cryptography`` package has no EAX mode, but EAX is only CTR mode and OMAC (CMAC), which it
does have, so it is composed here rather than pulling in another cryptography library:

    N' = OMAC_K(0 || nonce),  H' = OMAC_K(1 || header),  C = CTR_K(N', message),
    tag = N' xor H' xor OMAC_K(2 || C)   (each 0 / 1 / 2 padded to a 16-byte block)."""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

BLOCK = 16


class EaxAuthenticationError(ValueError):
    """The tag does not match: wrong key or nonce, or the message or header was altered."""


def _omac(key: bytes, tweak: int, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(tweak.to_bytes(BLOCK, "big") + data)
    return mac.finalize()


def _ctr(key: bytes, counter: bytes, data: bytes) -> bytes:
    crypt = Cipher(algorithms.AES(key), modes.CTR(counter)).encryptor()
    return crypt.update(data) + crypt.finalize()


def _full_tag(key: bytes, nonce_mac: bytes, header: bytes, ciphertext: bytes) -> bytes:
    header_mac = _omac(key, 1, header)
    cipher_mac = _omac(key, 2, ciphertext)
    return bytes(n ^ h ^ c for n, h, c in zip(nonce_mac, header_mac, cipher_mac, strict=True))


def _check(key: bytes, tag_length: int) -> None:
    if len(key) not in (16, 24, 32):
        raise ValueError(f"an AES key is 16, 24 or 32 bytes, got {len(key)}")
    if not 1 <= tag_length <= BLOCK:
        raise ValueError(f"an EAX tag is 1 to {BLOCK} bytes, got {tag_length}")


def eax_encrypt(
    key: bytes, nonce: bytes, message: bytes, header: bytes = b"", tag_length: int = BLOCK
) -> tuple[bytes, bytes]:
    """``(ciphertext, tag)``: the ciphertext is as long as ``message``; the tag is the first
    ``tag_length`` bytes of EAX's 16-byte tag (Eddystone's ETLM keeps 2)."""
    _check(key, tag_length)
    nonce_mac = _omac(key, 0, nonce)
    ciphertext = _ctr(key, nonce_mac, message)
    return ciphertext, _full_tag(key, nonce_mac, header, ciphertext)[:tag_length]


def eax_decrypt(
    key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, header: bytes = b""
) -> bytes:
    """The message, after checking ``tag`` (of any length 1-16) in constant time. Raises
    EaxAuthenticationError when it does not match: nothing unauthenticated is returned."""
    _check(key, len(tag))
    nonce_mac = _omac(key, 0, nonce)
    expected = _full_tag(key, nonce_mac, header, ciphertext)[: len(tag)]
    if not hmac.compare_digest(expected, tag):
        raise EaxAuthenticationError("EAX tag does not match")
    return _ctr(key, nonce_mac, ciphertext)
