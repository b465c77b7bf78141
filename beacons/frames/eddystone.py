"""Eddystone frames: service data under UUID 0xFEAA, frame type in the high nibble of byte 0.

UID (0x00), URL (0x10), TLM (0x20: version 0 plain, version 1 encrypted, "ETLM") and EID (0x30).
Multi-byte fields are big-endian. UID/URL/EID carry Tx power at 0 m (the spec's "1 m reading +
41 dB"), not at 1 m.

An EID beacon encrypts its telemetry (tlm-encrypted.md), since a plain battery voltage and uptime
would make it recognisable across its rotating ids: the 12 bytes after a plain TLM's version byte
are sealed with AES-EAX under the beacon's identity key, the nonce being the beacon's time counter
with its low K bits cleared (K: the EID rotation exponent) followed by a random 16-bit salt, and
the frame carries the salt and the first 2 bytes of the EAX tag (the MIC). Parsing stays pure:
``EddystoneETLM.open`` needs the key and time, which only the fleet's owner has."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from beacons.eax import EaxAuthenticationError, eax_decrypt, eax_encrypt
from beacons.errors import FrameError
from beacons.frames._fields import check_bytes, check_int, int8
from beacons.frames.url_codec import decode_url, encode_url

EDDYSTONE_UUID = "0000feaa-0000-1000-8000-00805f9b34fb"
UID_TYPE, URL_TYPE, TLM_TYPE, EID_TYPE = 0x00, 0x10, 0x20, 0x30
TLM_PLAIN, TLM_ENCRYPTED = 0x00, 0x01  # TLM versions
TLM_NO_TEMPERATURE = -0x8000  # 0x8000 read as signed 8.8: "not supported"
_TLM_BODY = struct.Struct(">HhII")  # battery, temperature, advertisement count, uptime
_TLM_LENGTH = 2 + _TLM_BODY.size
_ETLM_SALT, _ETLM_MIC = 2, 2
_ETLM_LENGTH = 2 + _TLM_BODY.size + _ETLM_SALT + _ETLM_MIC
_UID_LENGTHS = (18, 20)  # 20 with the two RFU bytes; 18 from older beacons that omit them


@dataclass(frozen=True, slots=True)
class EddystoneUID:
    """A fixed beacon id: 10-byte namespace + 6-byte instance."""

    tx_power_0m: int
    namespace: bytes
    instance: bytes

    def __post_init__(self) -> None:
        check_int("Eddystone-UID Tx power", self.tx_power_0m, -128, 127)
        check_bytes("Eddystone-UID namespace", self.namespace, 10)
        check_bytes("Eddystone-UID instance", self.instance, 6)

    def service_data(self) -> tuple[str, bytes]:
        """The (service UUID, bytes) pair bleak reports in ``service_data``; RFU bytes included."""
        payload = bytes([UID_TYPE, self.tx_power_0m & 0xFF]) + self.namespace + self.instance
        return EDDYSTONE_UUID, payload + b"\x00\x00"


@dataclass(frozen=True, slots=True)
class EddystoneURL:
    """A compressed URL (at most 17 encoded bytes after the scheme)."""

    tx_power_0m: int
    url: str

    def __post_init__(self) -> None:
        check_int("Eddystone-URL Tx power", self.tx_power_0m, -128, 127)
        encode_url(self.url)  # raises FrameError if the URL cannot be carried

    def service_data(self) -> tuple[str, bytes]:
        """The (service UUID, bytes) pair bleak reports in ``service_data``."""
        return EDDYSTONE_UUID, bytes([URL_TYPE, self.tx_power_0m & 0xFF]) + encode_url(self.url)


@dataclass(frozen=True, slots=True)
class EddystoneTLM:
    """Unencrypted telemetry. ``temperature_c`` is None when the beacon has no sensor (0x8000);
    ``uptime_tenths`` counts 0.1 s since power-on, as the spec's SEC_CNT does."""

    battery_mv: int
    temperature_c: float | None
    adv_count: int
    uptime_tenths: int

    def __post_init__(self) -> None:
        check_int("Eddystone-TLM battery", self.battery_mv, 0, 0xFFFF)
        check_int("Eddystone-TLM advertisement count", self.adv_count, 0, 0xFFFFFFFF)
        check_int("Eddystone-TLM uptime", self.uptime_tenths, 0, 0xFFFFFFFF)
        if self.temperature_c is not None:
            temperature = self.temperature_c
            raw = temperature * 256 if isinstance(temperature, int | float) else math.nan
            if isinstance(temperature, bool) or not math.isfinite(raw) or raw != int(raw) or not (
                -0x7FFF <= raw <= 0x7FFF
            ):
                raise FrameError(
                    "Eddystone-TLM temperature must be a multiple of 1/256 degC between "
                    f"-127.99 and 127.99, got {self.temperature_c!r}"
                )

    @property
    def uptime_s(self) -> float:
        """Seconds since the beacon powered on or rebooted."""
        return self.uptime_tenths / 10

    def service_data(self) -> tuple[str, bytes]:
        """The (service UUID, bytes) pair bleak reports in ``service_data``."""
        return EDDYSTONE_UUID, bytes([TLM_TYPE, TLM_PLAIN]) + self.body()

    def body(self) -> bytes:
        """The 12 telemetry bytes after the version byte: what ETLM encrypts."""
        raw_temp = (
            TLM_NO_TEMPERATURE if self.temperature_c is None else int(self.temperature_c * 256)
        )
        return _TLM_BODY.pack(self.battery_mv, raw_temp, self.adv_count, self.uptime_tenths)

    @classmethod
    def from_body(cls, body: bytes) -> EddystoneTLM:
        """Telemetry from its 12 bytes (a plain frame's, or a decrypted ETLM's)."""
        battery, raw_temp, adv_count, uptime = _TLM_BODY.unpack(body)
        temperature = None if raw_temp == TLM_NO_TEMPERATURE else raw_temp / 256
        return cls(battery, temperature, adv_count, uptime)


def etlm_nonce(exponent: int, beacon_time_s: int, salt: bytes) -> bytes:
    """The 6-byte ETLM nonce: the beacon's 32-bit time counter with its low ``exponent`` bits
    cleared (the EID's rotation period, so the nonce changes no faster than the id), big-endian,
    then the frame's salt."""
    check_int("Eddystone-EID rotation exponent", exponent, 0, 15)
    check_int("Eddystone-EID time counter", beacon_time_s, 0, 0xFFFFFFFF)
    check_bytes("Eddystone-ETLM salt", salt, _ETLM_SALT)
    quantum = (beacon_time_s >> exponent) << exponent
    return quantum.to_bytes(4, "big") + salt


@dataclass(frozen=True, slots=True)
class EddystoneETLM:
    """Encrypted telemetry (TLM version 1) of an EID beacon: 12 encrypted bytes, the salt that
    went into the nonce and a 2-byte MIC. Who holds the beacon's identity key ``open``s it."""

    ciphertext: bytes
    salt: bytes
    mic: bytes

    def __post_init__(self) -> None:
        check_bytes("Eddystone-ETLM encrypted telemetry", self.ciphertext, _TLM_BODY.size)
        check_bytes("Eddystone-ETLM salt", self.salt, _ETLM_SALT)
        check_bytes("Eddystone-ETLM MIC", self.mic, _ETLM_MIC)

    @classmethod
    def seal(
        cls,
        tlm: EddystoneTLM,
        identity_key: bytes,
        exponent: int,
        beacon_time_s: int,
        salt: bytes,
    ) -> EddystoneETLM:
        """What an EID beacon with ``identity_key`` and rotation ``exponent`` sends for ``tlm``
        when its time counter reads ``beacon_time_s`` (``salt``: 2 random bytes)."""
        check_bytes("Eddystone-EID identity key", identity_key, 16)
        nonce = etlm_nonce(exponent, beacon_time_s, salt)
        ciphertext, mic = eax_encrypt(identity_key, nonce, tlm.body(), tag_length=_ETLM_MIC)
        return cls(ciphertext, salt, mic)

    def open(self, identity_key: bytes, exponent: int, beacon_time_s: int) -> EddystoneTLM:
        """The telemetry, if the MIC proves it was sealed with ``identity_key`` in the rotation
        period of ``beacon_time_s``; FrameError otherwise (nothing unauthenticated is read)."""
        check_bytes("Eddystone-EID identity key", identity_key, 16)
        nonce = etlm_nonce(exponent, beacon_time_s, self.salt)
        try:
            body = eax_decrypt(identity_key, nonce, self.ciphertext, self.mic)
        except EaxAuthenticationError:
            raise FrameError(
                "Eddystone-ETLM does not authenticate (MIC mismatch): another identity key, a "
                "beacon clock in another rotation period, or a damaged frame"
            ) from None
        return EddystoneTLM.from_body(body)

    def service_data(self) -> tuple[str, bytes]:
        """The (service UUID, bytes) pair bleak reports in ``service_data``."""
        payload = bytes([TLM_TYPE, TLM_ENCRYPTED]) + self.ciphertext + self.salt + self.mic
        return EDDYSTONE_UUID, payload


@dataclass(frozen=True, slots=True)
class EddystoneEID:
    """An 8-byte ephemeral id; only its owner's resolver can map it to a beacon."""

    tx_power_0m: int
    eid: bytes

    def __post_init__(self) -> None:
        check_int("Eddystone-EID Tx power", self.tx_power_0m, -128, 127)
        check_bytes("Eddystone-EID ephemeral id", self.eid, 8)

    def service_data(self) -> tuple[str, bytes]:
        """The (service UUID, bytes) pair bleak reports in ``service_data``."""
        return EDDYSTONE_UUID, bytes([EID_TYPE, self.tx_power_0m & 0xFF]) + self.eid


EddystoneFrame = EddystoneUID | EddystoneURL | EddystoneTLM | EddystoneETLM | EddystoneEID


def parse_eddystone(data: bytes) -> EddystoneFrame:
    """Parse the service data bleak gives under 0xFEAA. Raises FrameError on unknown frame types
    and TLM versions, wrong lengths and reserved URL codes. Encrypted telemetry is returned
    sealed (``EddystoneETLM``)."""
    if not data:
        raise FrameError("Eddystone service data is empty")
    frame_type = data[0] & 0xF0
    if data[0] & 0x0F:
        raise FrameError(
            f"Eddystone frame type 0x{data[0]:02x} sets the reserved low bits (must be 0000)"
        )
    if frame_type == UID_TYPE:
        if len(data) not in _UID_LENGTHS:
            raise FrameError(f"Eddystone-UID must be 18 or 20 bytes, got {len(data)}")
        return EddystoneUID(int8(data[1]), bytes(data[2:12]), bytes(data[12:18]))
    if frame_type == URL_TYPE:
        if len(data) < 3:
            raise FrameError(f"Eddystone-URL needs at least 3 bytes, got {len(data)}")
        return EddystoneURL(int8(data[1]), decode_url(bytes(data[2:])))
    if frame_type == TLM_TYPE:
        return _parse_tlm(data)
    if frame_type == EID_TYPE:
        if len(data) != 10:
            raise FrameError(f"Eddystone-EID must be 10 bytes, got {len(data)}")
        return EddystoneEID(int8(data[1]), bytes(data[2:10]))
    raise FrameError(f"unknown Eddystone frame type 0x{frame_type:02x}")


def _parse_tlm(data: bytes) -> EddystoneTLM | EddystoneETLM:
    """Plain (version 0) or encrypted (version 1) telemetry, each of its own fixed length."""
    version = data[1] if len(data) > 1 else TLM_PLAIN
    if version == TLM_ENCRYPTED:
        if len(data) != _ETLM_LENGTH:
            raise FrameError(f"Eddystone-ETLM must be {_ETLM_LENGTH} bytes, got {len(data)}")
        salt_at = 2 + _TLM_BODY.size
        return EddystoneETLM(
            bytes(data[2:salt_at]),
            bytes(data[salt_at : salt_at + _ETLM_SALT]),
            bytes(data[salt_at + _ETLM_SALT :]),
        )
    if version != TLM_PLAIN:
        raise FrameError(
            f"Eddystone-TLM version {version} is unknown (0 is plain telemetry, 1 encrypted)"
        )
    if len(data) != _TLM_LENGTH:
        raise FrameError(f"Eddystone-TLM must be {_TLM_LENGTH} bytes, got {len(data)}")
    return EddystoneTLM.from_body(bytes(data[2:]))
