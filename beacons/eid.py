"""Eddystone-EID computation (eid-computation.md): a store's own EID beacons advertise an ephemeral
id that only the holder of the beacon's identity key can recognise. The fleet declares that key, so
fleet health can tell the store's EID beacons from strangers' without a resolver service."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def _aes(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 (spec'd ECB)
    return encryptor.update(block) + encryptor.finalize()


def ephemeral_id(identity_key: bytes, exponent: int, beacon_time_s: int) -> bytes:
    """The 8-byte EID a beacon with ``identity_key`` and rotation exponent ``exponent`` (0-15)
    advertises when its own time counter reads ``beacon_time_s``."""
    if len(identity_key) != 16:
        raise ValueError("an EID identity key is 16 bytes")
    if not 0 <= exponent <= 15:
        raise ValueError("the EID rotation exponent is 0-15")
    counter = beacon_time_s & 0xFFFFFFFF
    temporary_key = _aes(
        identity_key, bytes(11) + b"\xff" + bytes(2) + (counter >> 16).to_bytes(2, "big")
    )
    quantum = (counter >> exponent) << exponent
    return _aes(temporary_key, bytes(11) + bytes([exponent]) + quantum.to_bytes(4, "big"))[:8]
