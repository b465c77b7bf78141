"""Beacon frames: the byte vectors published in the specifications, round trips, and fuzzing."""

from __future__ import annotations

from uuid import UUID

import pytest
from bleak.backends.scanner import AdvertisementData
from hypothesis import given, settings
from hypothesis import strategies as st

from beacons.errors import FrameError
from beacons.frames import (
    EDDYSTONE_UUID,
    AltBeacon,
    EddystoneEID,
    EddystoneETLM,
    EddystoneTLM,
    EddystoneUID,
    EddystoneURL,
    IBeacon,
    advertising_data,
    parse_frames,
)
from beacons.frames.altbeacon import parse_altbeacon
from beacons.frames.eddystone import etlm_nonce, parse_eddystone
from beacons.frames.ibeacon import parse_ibeacon
from beacons.frames.url_codec import decode_url, encode_url

# --- vectors from the specifications ---------------------------------------------------------


def test_ibeacon_layout_from_apple_manufacturer_data() -> None:
    # 4C 00 | 02 15 | UUID | major 0x0010 | minor 0x0020 | power 0xC6 (-58 dBm)
    data = bytes.fromhex("021583256b7478d043a4826905f9dc8a44ba00100020c6")
    frame = parse_ibeacon(data)
    assert frame == IBeacon(UUID("83256b74-78d0-43a4-8269-05f9dc8a44ba"), 16, 32, -58)
    assert frame.manufacturer_data() == (0x004C, data)


def test_altbeacon_reference_transmit_vector() -> None:
    # The AltBeacon reference transmitter's payload after the AD header and company id 0x0118:
    # BE AC | id1 (16 zero bytes) | id2 0001 | id3 0001 | ref RSSI C5 (-59) | reserved 01
    data = bytes.fromhex("beac" + "00" * 16 + "0001" + "0001" + "c5" + "01")
    frame = parse_altbeacon(0x0118, data)
    assert frame.reference_rssi == -59
    assert frame.mfg_reserved == 1
    assert (frame.id1, frame.id2, frame.id3) == (UUID(int=0), 1, 1)
    assert frame.manufacturer_data() == (0x0118, data)


def test_eddystone_tx_power_examples_from_the_url_spec() -> None:
    # "The value 0x12 is interpreted as +18dBm; the value 0xEE is interpreted as -18dBm".
    url = encode_url("https://goo.gl/S6zT6P")
    assert parse_eddystone(bytes.fromhex("1012") + url).tx_power_0m == 18
    assert parse_eddystone(bytes.fromhex("10ee") + url).tx_power_0m == -18


def test_eddystone_url_scheme_and_expansion_codes() -> None:
    # Scheme 0x03 = "https://", ".gl/" is not an expansion so it stays literal.
    assert encode_url("https://goo.gl/S6zT6P") == b"\x03goo.gl/S6zT6P"
    # 0x00 = "http://www.", 0x00 body code = ".com/", 0x07 = ".com"
    assert decode_url(b"\x00example\x00shop") == "http://www.example.com/shop"
    assert encode_url("http://www.example.com") == b"\x00example\x07"
    assert encode_url("https://example.org/") == b"\x03example\x01"


def test_eddystone_url_rejects_reserved_bytes_and_long_urls() -> None:
    with pytest.raises(FrameError, match="reserved"):
        decode_url(b"\x03abc\x0e")
    with pytest.raises(FrameError, match="scheme"):
        decode_url(b"\x04abc")
    with pytest.raises(FrameError, match="at most 17"):
        encode_url("https://a-very-long-host-name.example/path")
    with pytest.raises(FrameError, match="http"):
        encode_url("ftp://example.com")


def test_eddystone_tlm_layout_and_no_sensor_temperature() -> None:
    # 0x20 | version 0 | VBATT 0x0BB8 (3000 mV) | TEMP 0x8000 (not supported) | ADV_CNT | SEC_CNT
    data = bytes.fromhex("20000bb880000000006400002710")
    tlm = parse_eddystone(data)
    assert tlm == EddystoneTLM(
        battery_mv=3000, temperature_c=None, adv_count=100, uptime_tenths=10000
    )
    assert tlm.uptime_s == 1000.0  # SEC_CNT counts 0.1 s
    assert tlm.service_data() == (EDDYSTONE_UUID, data)


def test_eddystone_tlm_temperature_is_signed_8_8_fixed_point() -> None:
    base = "20000bb8{}0000000000000000"
    assert parse_eddystone(bytes.fromhex(base.format("1580"))).temperature_c == 21.5
    assert parse_eddystone(bytes.fromhex(base.format("ff80"))).temperature_c == -0.5


IDENTITY_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def test_encrypted_tlm_layout() -> None:
    # tlm-encrypted.md: 0x20 | version 0x01 | 12 bytes ETLM | 2 bytes salt | 2 bytes MIC
    data = bytes.fromhex("2001" + "a1" * 12 + "5a17" + "c0de")
    etlm = parse_eddystone(data)
    assert etlm == EddystoneETLM(bytes.fromhex("a1" * 12), b"\x5a\x17", b"\xc0\xde")
    assert etlm.service_data() == (EDDYSTONE_UUID, data)
    # The nonce: the time counter with its low K bits cleared, big-endian, then the salt.
    assert etlm_nonce(10, 0x12345678, b"\x5a\x17") == bytes.fromhex("123454005a17")
    assert etlm_nonce(0, 0x12345678, b"\x5a\x17") == bytes.fromhex("123456785a17")


def test_encrypted_tlm_opens_with_the_key_in_the_same_rotation_period() -> None:
    tlm = EddystoneTLM(battery_mv=2350, temperature_c=21.5, adv_count=4711, uptime_tenths=86400)
    sealed = EddystoneETLM.seal(tlm, IDENTITY_KEY, 10, 1_767_261_600, salt=b"\x5a\x17")
    assert sealed.ciphertext != tlm.body()
    # Any time in the same 2^10 s period opens it: the beacon and the hub need not agree exactly.
    period_start = 1_767_261_600 & ~0x3FF
    for beacon_time in (period_start, 1_767_261_600, period_start + 1023):
        assert sealed.open(IDENTITY_KEY, 10, beacon_time) == tlm
    assert parse_eddystone(sealed.service_data()[1]).open(IDENTITY_KEY, 10, period_start) == tlm


def test_encrypted_tlm_that_does_not_authenticate_is_refused() -> None:
    tlm = EddystoneTLM(2350, 21.5, 4711, 86400)
    sealed = EddystoneETLM.seal(tlm, IDENTITY_KEY, 10, 1_767_261_600, salt=b"\x5a\x17")
    tampered = bytes([sealed.ciphertext[0] ^ 0x01]) + sealed.ciphertext[1:]
    cases = [
        (sealed, bytes(16), 1_767_261_600),  # wrong identity key
        (sealed, IDENTITY_KEY, 1_767_261_600 + 1024),  # the next rotation period
        (EddystoneETLM(sealed.ciphertext, sealed.salt, b"\x00\x00"), IDENTITY_KEY, 1_767_261_600),
        (EddystoneETLM(tampered, sealed.salt, sealed.mic), IDENTITY_KEY, 1_767_261_600),
        (EddystoneETLM(sealed.ciphertext, b"\x5a\x18", sealed.mic), IDENTITY_KEY, 1_767_261_600),
    ]
    assert sealed.mic != b"\x00\x00"
    for etlm, key, beacon_time in cases:
        with pytest.raises(FrameError, match="does not authenticate"):
            etlm.open(key, 10, beacon_time)
    with pytest.raises(FrameError, match="identity key must be 16 bytes"):
        sealed.open(IDENTITY_KEY[:8], 10, 1_767_261_600)
    with pytest.raises(FrameError, match="rotation exponent must be between 0 and 15"):
        sealed.open(IDENTITY_KEY, 16, 1_767_261_600)
    with pytest.raises(FrameError, match="time counter must be between"):
        sealed.open(IDENTITY_KEY, 10, -1)


def test_telemetry_of_a_wrong_length_or_unknown_version_is_refused() -> None:
    with pytest.raises(FrameError, match="ETLM must be 18 bytes, got 17"):
        parse_eddystone(bytes.fromhex("2001") + bytes(15))
    with pytest.raises(FrameError, match="version 2 is unknown"):
        parse_eddystone(bytes.fromhex("2002") + bytes(12))
    with pytest.raises(FrameError, match="TLM must be 14 bytes, got 18"):
        parse_eddystone(bytes.fromhex("2000") + bytes(16))


def test_eddystone_uid_from_an_elided_uuid_namespace() -> None:
    # The spec's example: 8b0ca750-e7a7-4e14-bd99-095477cb3e77 elides to 8b0ca750095477cb3e77.
    namespace = bytes.fromhex("8b0ca750095477cb3e77")
    uid = EddystoneUID(-18, namespace, bytes.fromhex("000000000001"))
    uuid, payload = uid.service_data()
    assert payload == bytes.fromhex("00ee") + namespace + bytes.fromhex("000000000001") + b"\0\0"
    assert parse_eddystone(payload) == uid
    assert parse_eddystone(payload[:18]) == uid  # older beacons omit the two RFU bytes


def test_eddystone_eid_layout() -> None:
    data = bytes.fromhex("30ee0102030405060708")
    assert parse_eddystone(data) == EddystoneEID(-18, bytes.fromhex("0102030405060708"))


def test_parse_frames_reads_what_bleak_reports() -> None:
    ibeacon = IBeacon(UUID(int=7), 1, 2, -59)
    company, payload = ibeacon.manufacturer_data()
    data = AdvertisementData(
        local_name=None,
        manufacturer_data={company: payload, 0x0006: b"\x01\x09\x20"},  # + a Microsoft payload
        service_data={EDDYSTONE_UUID: EddystoneTLM(2900, 20.0, 5, 50).service_data()[1]},
        service_uuids=[],
        tx_power=None,
        rssi=-60,
        platform_data=(),
    )
    frames = parse_frames(data.manufacturer_data, data.service_data)
    assert frames == [ibeacon, EddystoneTLM(2900, 20.0, 5, 50)]


def test_other_apple_payloads_are_not_errors_but_broken_beacons_are_when_strict() -> None:
    assert parse_frames({0x004C: bytes.fromhex("1005031c")}, {}) == []
    broken = {0x004C: bytes.fromhex("0215") + bytes(5)}
    assert parse_frames(broken, {}) == []
    with pytest.raises(FrameError, match="23 bytes"):
        parse_frames(broken, {}, strict=True)


def test_frames_refuse_values_their_layout_cannot_carry() -> None:
    with pytest.raises(FrameError, match="major"):
        IBeacon(UUID(int=0), 70000, 0, -59)
    with pytest.raises(FrameError, match="namespace"):
        EddystoneUID(0, b"short", bytes(6))
    # Why: NaN and infinity escaped as ValueError / OverflowError, True passed as 1/256 degC
    for temperature in (20.001, float("nan"), float("inf"), True, "20"):
        with pytest.raises(FrameError, match="1/256"):
            EddystoneTLM(3000, temperature, 0, 0)  # type: ignore[arg-type]


def test_eddystone_frame_types_with_reserved_bits_are_not_read() -> None:
    """The spec: the four low-order bits of the frame type are reserved and must be 0000; 0x21
    had been read as telemetry."""
    tlm = EddystoneTLM(3000, 20.0, 1, 1).service_data()[1]
    with pytest.raises(FrameError, match="reserved low bits"):
        parse_eddystone(bytes([0x21]) + tlm[1:])


# --- round trips -----------------------------------------------------------------------------

int8 = st.integers(-128, 127)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
url_chars = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12
)
tlms = st.builds(
    EddystoneTLM,
    u16,
    st.one_of(st.none(), st.integers(-0x7FFF, 0x7FFF).map(lambda r: r / 256)),
    u32,
    u32,
)

frames = st.one_of(
    st.builds(IBeacon, st.uuids(), u16, u16, int8),
    st.builds(AltBeacon, u16, st.binary(min_size=20, max_size=20), int8, st.integers(0, 255)),
    st.builds(
        EddystoneUID, int8, st.binary(min_size=10, max_size=10), st.binary(min_size=6, max_size=6)
    ),
    st.builds(
        EddystoneURL,
        int8,
        st.builds(
            lambda s, body: s + body,
            st.sampled_from(["http://", "https://", "http://www.", "https://www."]),
            url_chars,
        ),
    ),
    tlms,
    st.builds(EddystoneEID, int8, st.binary(min_size=8, max_size=8)),
    st.builds(
        EddystoneETLM,
        st.binary(min_size=12, max_size=12),
        st.binary(min_size=2, max_size=2),
        st.binary(min_size=2, max_size=2),
    ),
)


@settings(deadline=None)  # timing is the bench's business; CI machines are shared
@given(frames)
def test_every_frame_survives_a_round_trip_through_bleak_shaped_data(frame: object) -> None:
    manufacturer, service = advertising_data(frame)  # type: ignore[arg-type]
    assert parse_frames(manufacturer, service, strict=True) == [frame]


@settings(deadline=None)
@given(
    tlms,
    st.binary(min_size=16, max_size=16),
    st.integers(0, 15),
    u32,
    st.binary(min_size=2, max_size=2),
)
def test_sealed_telemetry_opens_back_to_the_same_telemetry(
    tlm: EddystoneTLM, key: bytes, exponent: int, beacon_time: int, salt: bytes
) -> None:
    sealed = EddystoneETLM.seal(tlm, key, exponent, beacon_time, salt)
    _, data = sealed.service_data()
    assert len(data) == 18
    assert parse_eddystone(data).open(key, exponent, beacon_time) == tlm  # type: ignore[union-attr]


@settings(deadline=None)
@given(st.builds(EddystoneURL, int8, url_chars.map(lambda s: "https://" + s)))
def test_url_bytes_decode_back_to_the_same_url(frame: EddystoneURL) -> None:
    _, data = frame.service_data()
    assert decode_url(data[2:]) == frame.url


# --- fuzzing: nothing crashes the parsers ---------------------------------------------------


@settings(deadline=None)
@given(st.binary(max_size=40))
def test_eddystone_parser_only_ever_raises_frame_error(data: bytes) -> None:
    try:
        parse_eddystone(data)
    except FrameError:
        pass


@settings(deadline=None)
@given(st.binary(max_size=20).map(lambda b: b"\x20\x01" + b), st.integers(0, 15), u32)
def test_encrypted_telemetry_only_ever_raises_frame_error(
    data: bytes, exponent: int, beacon_time: int
) -> None:
    """Whatever bytes come with version 1, parsing and opening them ends in telemetry (a 16-bit
    MIC matches one random frame in 65536) or FrameError, never in another exception."""
    try:
        etlm = parse_eddystone(data)
        assert isinstance(etlm, EddystoneETLM)
        assert isinstance(etlm.open(IDENTITY_KEY, exponent, beacon_time), EddystoneTLM)
    except FrameError:
        pass


@settings(deadline=None)
@given(st.binary(max_size=40))
def test_ibeacon_parser_only_ever_raises_frame_error(data: bytes) -> None:
    try:
        parse_ibeacon(data)
    except FrameError:
        pass


@settings(deadline=None)
@given(u16, st.binary(max_size=40))
def test_altbeacon_parser_only_ever_raises_frame_error(company: int, data: bytes) -> None:
    try:
        parse_altbeacon(company, data)
    except FrameError:
        pass


@settings(deadline=None)
@given(
    st.dictionaries(u16, st.binary(max_size=32), max_size=3),
    st.dictionaries(
        st.sampled_from([EDDYSTONE_UUID, "0000fd6f-0000-1000-8000-00805f9b34fb"]),
        st.binary(max_size=32),
        max_size=2,
    ),
)
def test_parse_frames_never_raises_when_lenient(
    manufacturer: dict[int, bytes], service: dict[str, bytes]
) -> None:
    for frame in parse_frames(manufacturer, service):
        assert advertising_data(frame)  # anything returned is a well-formed frame


@settings(deadline=None)
@given(
    st.one_of(
        st.binary(min_size=2, max_size=30).map(lambda b: b"\x02\x15" + b),
        st.binary(min_size=0, max_size=30).map(lambda b: b"\xbe\xac" + b),
    )
)
def test_strict_parse_of_beacon_looking_bytes_raises_only_frame_error(data: bytes) -> None:
    try:
        parse_frames({0x004C: data}, {}, strict=True)
    except FrameError:
        pass
