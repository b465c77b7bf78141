"""Trace lines and members files: what is valid, and what a person sees when it is not."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from beacons.advertisement import Advertisement, from_bleak, to_bleak
from beacons.errors import MembersFileError, TraceError
from beacons.evaluation import read_truth
from beacons.members_file import load_members
from beacons.pipeline import PresencePipeline, TraceClock
from beacons.presence import PresenceEngine
from beacons.settings import PresenceSettings
from beacons.tokens import TokenResolver, canonical, token_uuid, window_of
from beacons.trace import (
    MAX_LINE_BYTES,
    decode_line,
    encode,
    iter_lines,
    read_trace,
    write_trace,
)

LINE = (
    '{"t": 12.5, "scanner": "door", "address": "5A:01:02:03:04:05", "rssi": -67, '
    '"tx_power": null, "local_name": null, "manufacturer_data": {"76": "0215"}, '
    '"service_data": {"0000feaa-0000-1000-8000-00805f9b34fb": "2000"}, "service_uuids": ["abc"]}'
)


def test_the_design_example_line_decodes() -> None:
    adv = decode_line(LINE)
    assert (adv.t, adv.scanner, adv.rssi, adv.service_uuids) == (12.5, "door", -67, ["abc"])
    assert adv.manufacturer_bytes() == {76: b"\x02\x15"}


def test_lines_round_trip_and_keep_every_field() -> None:
    adv = decode_line(LINE)
    again = decode_line(encode(adv))
    assert again == adv
    assert set(json.loads(encode(adv))) == {
        "t",
        "scanner",
        "address",
        "rssi",
        "tx_power",
        "local_name",
        "manufacturer_data",
        "service_data",
        "service_uuids",
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"t": 1, "scanner": "door", "address": "a"}', "rssi"),
        ('{"t": "soon", "scanner": "door", "address": "a", "rssi": -60}', "t"),
        ('{"t": NaN, "scanner": "door", "address": "a", "rssi": -60}', ""),
        ('{"t": 1e18, "scanner": "door", "address": "a", "rssi": -60}', "t must be Unix time"),
        ('{"t": 1e300, "scanner": "door", "address": "a", "rssi": -60}', "between 0 and"),
        ('{"t": -5, "scanner": "door", "address": "a", "rssi": -60}', "got -5"),
        ('{"t": 1, "scanner": "d\xe9", "address": "a", "rssi": -60}', "not UTF-8 text"),
        ('{"t": 1, "scanner": "d", "address": "a", "rssi": 1e300}', "rssi must be dBm between"),
        ('{"t": 1, "scanner": "d", "address": "a", "rssi": -60, "x": ' + "[" * 5000 + "]" * 5000
         + "}", "JSON nested too deeply"),
    ],
)
def test_bad_lines_name_the_file_line_and_field(line: str, message: str) -> None:
    bad = line.encode("latin-1") if "\xe9" in line else line.encode()
    stream = io.BytesIO(b"\n" + LINE.encode() + b"\n" + bad + b"\n")
    with pytest.raises(TraceError) as caught:
        list(iter_lines(stream, source="shop.jsonl"))
    assert str(caught.value).startswith("shop.jsonl:3: ")
    assert message in str(caught.value)


def test_bad_hex_and_company_ids_are_refused_with_the_line() -> None:
    """Why: they were read as advertisements and only failed when a frame parser needed the
    bytes, where fleet health dropped the whole line unsaid: a relay node with such a bug made
    its beacons look missing, and no counter said why."""
    for old, new, message in (('"0215"', '"zz"', "is not hex bytes: 'zz'"),
                              ('"0215"', '"021"', "is not hex bytes: '021'"),
                              ('"76"', '"apple"', "is not a company id"),
                              ('"76"', '"65536"', "is not a company id"),
                              ('"76"', '"²"', "is not a company id"),
                              ('"76"', '"７６"', "is not a company id"),
                              ('"76"', '"000076"', "is not a company id"),
                              ('"0000feaa-0000-1000-8000-00805f9b34fb"', '"feaa"',
                               "service_data key 'feaa' is not a 128-bit service UUID"),
                              ('"0000feaa-0000-1000-8000-00805f9b34fb"', '"not-a-uuid"',
                               "is not a 128-bit service UUID")):
        assert old in LINE
        with pytest.raises(TraceError, match=message) as caught:
            decode_line(LINE.replace(old, new, 1), source="relay", number=4)
        assert str(caught.value).startswith("relay:4: ")
    assert decode_line(LINE.replace('"0215"', '"02AB"')).manufacturer_bytes()  # any case
    bare = LINE.replace("0000feaa-0000-1000-8000-00805f9b34fb", "0000FEAA00001000800000805F9B34FB")
    assert decode_line(bare).service_bytes() == decode_line(LINE).service_bytes()


def test_missing_trace_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot open"):
        list(read_trace(tmp_path / "nope.jsonl"))


def test_bleak_objects_convert_both_ways(tmp_path: Path) -> None:
    device = BLEDevice("5A:01:02:03:04:05", None, details=None)
    data = AdvertisementData(
        local_name="tag",
        manufacturer_data={76: b"\x02\x15\x00"},
        service_data={"0000FEAA-0000-1000-8000-00805F9B34FB": b"\x20\x00"},
        service_uuids=["0000FD6F-0000-1000-8000-00805F9B34FB"],
        tx_power=-12,
        rssi=-70,
        platform_data=(),
    )
    adv = from_bleak(device, data, scanner="door", t=5.0)
    assert adv.service_uuids == ["0000fd6f-0000-1000-8000-00805f9b34fb"]
    assert adv.service_data == {"0000feaa-0000-1000-8000-00805f9b34fb": "2000"}
    back_device, back_data = to_bleak(adv)
    assert back_device.address == device.address
    assert back_data.manufacturer_data == data.manufacturer_data
    assert (back_data.rssi, back_data.tx_power, back_data.local_name) == (-70, -12, "tag")
    path = tmp_path / "one.jsonl"
    write_trace(path, [adv])
    assert list(read_trace(path)) == [adv]


def _members(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "members.json"
    path.write_text(json.dumps(doc))
    return path


def test_members_file_loads(tmp_path: Path) -> None:
    doc = {"chain_prefix": "00" * 8, "members": [{"id": "a", "key": "11" * 16}]}
    path = _members(tmp_path, doc)
    members = load_members(path)
    assert members.chain_prefix == bytes(8) and members.keys == {"a": b"\x11" * 16}


def test_members_file_as_member_systems_export_it(tmp_path: Path) -> None:
    """Extra fields, numeric ids and hex written UUID-style or in capitals are read (a strict
    reader had refused the whole file); the contract's own shape is unchanged."""
    doc = {
        "version": 2,
        "chain_prefix": "0x0123456789ABCDEF",
        "members": [
            {"id": 42, "key": "00112233-4455-6677-8899-aabbccddeeff", "name": "A. Member"},
            {"id": "b", "key": "11" * 16, "opted_in": "2026-01-02"},
        ],
    }
    members = load_members(_members(tmp_path, doc))
    assert members.chain_prefix == bytes.fromhex("0123456789abcdef")
    key = bytes.fromhex("00112233445566778899aabbccddeeff")
    assert members.keys == {"42": key, "b": b"\x11" * 16}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "JSON object"),
        ({"members": []}, "chain_prefix"),
        ({"chain_prefix": "00", "members": []}, "16 hex"),
        ({"chain_prefix": "00" * 8, "members": [{"id": "a"}]}, r"members\[0\]"),
        ({"chain_prefix": "00" * 8, "members": [{"id": "a", "key": "xyz"}]}, "'a'"),
        ({"chain_prefix": "00" * 8, "members": [{"id": "a", "key": "11" * 16}] * 2}, "twice"),
        (
            {
                "chain_prefix": "00" * 8,
                "members": [{"id": "a", "key": "ab" * 16}, {"id": "b", "key": "AB" * 16}],
            },
            r"members\[1\] 'b' has the same key as 'a'",
        ),
    ],
)
def test_members_file_errors_say_what_to_fix(tmp_path: Path, doc: object, message: str) -> None:
    with pytest.raises(MembersFileError, match=message):
        load_members(_members(tmp_path, doc))


def test_members_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text("{")
    with pytest.raises(MembersFileError, match="not valid JSON"):
        load_members(path)
    path.write_bytes('{"chain_prefix": "Sj\xf6"}'.encode("latin-1"))
    with pytest.raises(MembersFileError, match=r"m\.json: not UTF-8 text"):
        load_members(path)


def test_members_file_key_errors_name_the_file(tmp_path: Path) -> None:
    doc = {"chain_prefix": "00" * 8, "members": [{"id": "a", "key": "xyz"}]}
    with pytest.raises(MembersFileError, match=r"members\.json: member 'a'"):
        load_members(_members(tmp_path, doc))
    with pytest.raises(MembersFileError, match=r"members\.json: chain prefix"):
        load_members(_members(tmp_path, {"chain_prefix": "00", "members": []}))


def test_advertisement_defaults_are_empty() -> None:
    adv = Advertisement(t=1.0, scanner="s", address="a", rssi=-50)
    assert adv.manufacturer_bytes() == {} and adv.service_bytes() == {}


def test_lines_from_other_recorders_are_read_and_resolved() -> None:
    """Fractional dBm and UUIDs in capitals or as 32 bare hex digits (simulators and other
    recorders write them) were refused or left unresolved; bleak's own form stays as it was."""
    prefix, key = bytes.fromhex("52455441494c4842"), bytes(range(16))
    t = 1_764_000_000.25
    dashed = token_uuid(prefix, key, window_of(t))
    pipeline = PresencePipeline(
        TokenResolver(prefix, {"m1": key}), PresenceEngine(PresenceSettings(), TraceClock())
    )
    for uuid in (dashed.upper(), dashed.replace("-", "").upper(), dashed.replace("-", "")):
        line = json.dumps(
            {
                "t": t,
                "scanner": "door",
                "address": "a",
                "rssi": -67.5,
                "tx_power": -12.0,
                "service_uuids": [uuid],
            }
        )
        adv = decode_line(line)
        assert adv.rssi == -67.5 and to_bleak(adv)[1].rssi == -68
        pipeline.feed(adv)
    assert pipeline.resolved == 3
    assert canonical("not-a-uuid") == "not-a-uuid"
    assert encode(decode_line(LINE)) == encode(decode_line(encode(decode_line(LINE))))
    assert b'"rssi":-67,' in encode(decode_line(LINE))


def test_a_byte_order_mark_before_the_trace_or_members_file_is_skipped(tmp_path: Path) -> None:
    stream = io.BytesIO(b"\xef\xbb\xbf" + LINE.encode() + b"\n")
    assert list(iter_lines(stream, source="t.jsonl")) == [decode_line(LINE)]
    path = tmp_path / "members.json"
    doc = {"chain_prefix": "00" * 8, "members": [{"id": "a", "key": "11" * 16}]}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc).encode())
    assert load_members(path).keys == {"a": b"\x11" * 16}


def test_every_trace_reader_skips_a_byte_order_mark() -> None:
    """Why: replay reads lines through the pipeline, not iter_lines, and refused a trace saved
    with a BOM as "invalid character (byte 0)" while eval read the same file."""
    prefix, key = b"\x01" * 8, b"\x02" * 16
    t = 1_767_268_800.0
    line = LINE.replace('"abc"', f'"{token_uuid(prefix, key, window_of(t))}"').replace(
        '"t": 12.5', f'"t": {t}'
    )
    clock = TraceClock()
    pipeline = PresencePipeline(
        TokenResolver(prefix, {"m": key}), PresenceEngine(PresenceSettings(), clock), clock
    )
    stream = io.BytesIO(b"\xef\xbb\xbf" + line.encode() + b"\n")
    assert list(pipeline.run_lines(stream, source="t.jsonl")) == []
    assert pipeline.resolved == 1


def test_a_trace_that_is_not_utf8_text_says_so() -> None:
    """Why: a UTF-16 export was refused as "invalid character (byte 0)", which does not say
    what to do about it."""
    for data in (LINE.encode("utf-16"), LINE.encode("utf-16-be"), b"\xff" + LINE.encode()):
        with pytest.raises(TraceError, match=r"t.jsonl:1: not UTF-8 text \(") as caught:
            list(iter_lines(io.BytesIO(data + b"\n"), source="t.jsonl"))
        assert "save the trace as UTF-8" in str(caught.value)


def test_a_line_over_the_cap_is_refused_without_reading_it_whole() -> None:
    """Why: a file without line breaks (/dev/zero, one 50 MB line) was read whole into memory
    before anything was said."""
    clock = TraceClock()
    pipeline = PresencePipeline(
        TokenResolver(b"\x01" * 8), PresenceEngine(PresenceSettings(), clock), clock
    )
    for read in (
        lambda s: list(iter_lines(s, source="t.jsonl")),
        lambda s: list(pipeline.run_lines(s, source="t.jsonl")),
    ):
        stream = io.BytesIO(LINE.encode() + b"\n" + b"\x00" * (10 * MAX_LINE_BYTES))
        with pytest.raises(TraceError, match=r"t.jsonl:2: line longer than 64 KiB"):
            read(stream)
        assert stream.tell() <= len(LINE) + 2 + MAX_LINE_BYTES
    # a line just under the cap is still read (and judged on its content)
    padded = LINE[:-1] + ', "pad": "' + "x" * (MAX_LINE_BYTES - len(LINE) - 20) + '"}'
    assert len(padded) < MAX_LINE_BYTES
    assert list(iter_lines(io.BytesIO(padded.encode()), source="t.jsonl")) == [decode_line(LINE)]


def test_a_members_file_over_the_cap_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    """Why: it was read whole into memory (a wrong file, /dev/zero) before anything was said."""
    path = tmp_path / "members.json"
    with path.open("wb") as out:  # sparse: 1 GiB on the disk costs nothing
        out.truncate(1024**3)
    with pytest.raises(MembersFileError, match=r"members\.json: larger than 32 MiB"):
        load_members(path)


def test_a_deeply_nested_members_file_is_refused_in_one_sentence(tmp_path: Path) -> None:
    """Why: "[[[[..." 100 000 deep ended replay with a RecursionError traceback."""
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(MembersFileError, match=r"deep\.json: JSON nested too deeply"):
        load_members(path)


@pytest.mark.parametrize(("prefix", "kind"), [
    ("1234", "a number"), ("NaN", "a number"), ("null", "null"), ("[1]", "a list"),
    ("true", "true or false"),
])
def test_a_chain_prefix_of_the_wrong_type_is_not_called_missing(
    tmp_path: Path, prefix: str, kind: str
) -> None:
    """Why: "chain_prefix": 1234 was reported as "chain_prefix (16 hex digits) is missing"."""
    path = tmp_path / "m.json"
    path.write_text(f'{{"chain_prefix": {prefix}, "members": []}}')
    with pytest.raises(MembersFileError) as caught:
        load_members(path)
    assert str(caught.value) == (
        f"{path}: chain_prefix must be a string of 16 hex digits in quotes, got {kind}"
    )


def test_a_key_given_twice_in_a_members_file_is_refused_with_its_line(tmp_path: Path) -> None:
    """Why: json keeps the last of two equal keys without a word, so a member line copied and
    half edited by hand took the second key (or id) and replayed as someone else's phone."""
    path = tmp_path / "members.json"
    path.write_text('{"chain_prefix": "0011223344556677",\n "members": [\n'
                    '  {"id": "a", "key": "' + "00" * 16 + '", "key": "' + "11" * 16 + '"}\n]}\n')
    with pytest.raises(MembersFileError) as caught:
        load_members(path)
    assert str(caught.value) == f'{path}:3: the key "key" appears twice in one object'
    path.write_text('{"chain_prefix": "0011223344556677", "members": [],\n'
                    ' "chain_prefix": "8899aabbccddeeff"}')
    with pytest.raises(MembersFileError, match=r':2: the key "chain_prefix" appears twice'):
        load_members(path)


def test_a_number_python_will_not_read_is_refused_as_malformed_json(tmp_path: Path) -> None:
    """Why: json raises a bare ValueError for a number of more than 4300 digits, which went past
    the readers' handling: replay and eval stopped with a traceback, and the relay lost the rest
    of its message."""
    huge = "9" * 5000
    path = tmp_path / "members.json"
    path.write_text('{"chain_prefix": "0011223344556677",\n "members": [],\n "n": ' + huge + "}")
    with pytest.raises(MembersFileError, match=r"more than 4300 digits.*line 3"):
        load_members(path)
    line = LINE.replace('"local_name": null', '"local_name": "door", "x": "door", "n": ' + huge)
    stream = io.BytesIO(f"{LINE}\n{line}\n".encode())
    with pytest.raises(TraceError, match=r"^shop.jsonl:2: a number of more than 4300 digits"):
        list(iter_lines(stream, source="shop.jsonl"))
    truth = tmp_path / "truth.jsonl"
    truth.write_text('{"t": 1, "member": "m", "event": "arrived", "n": ' + huge + "}\n")
    with pytest.raises(TraceError, match=r":1: not valid JSON: a number of more than 4300"):
        read_truth(truth)


@pytest.mark.parametrize(("old", "new", "key"), [
    ('"rssi": -67,', '"rssi": -67, "rssi": -40,', "rssi"),
    ('{"76": "0215"}', '{"76": "0215", "76": "0216"}', "76"),
    ('"t": 12.5,', '"t": 12.5, "\\u0074": 99.0,', "t"),  # the same key, written another way
])
def test_a_key_given_twice_in_a_trace_line_is_refused_with_its_line(
    old: str, new: str, key: str
) -> None:
    """Why: msgspec, as json, keeps the last of two equal keys, so a hand-edited or badly
    generated line was replayed with whichever came last (an RSSI, a beacon's bytes)."""
    assert old in LINE
    stream = io.BytesIO(f"{LINE}\n{LINE.replace(old, new, 1)}\n".encode())
    with pytest.raises(TraceError) as caught:
        list(iter_lines(stream, source="shop.jsonl"))
    assert str(caught.value) == f'shop.jsonl:2: the key "{key}" appears twice in one object'
    # the same strings as values, or one key in two objects, are no repeat
    same = LINE.replace('"local_name": null', '"local_name": "door", "x": {"76": "door"}')
    assert decode_line(same).local_name == "door"


def test_a_key_given_twice_in_a_truth_line_is_refused_with_its_line(tmp_path: Path) -> None:
    """Why: a truth record with "event" twice was scored as the last one's event."""
    truth = tmp_path / "truth.jsonl"
    truth.write_text('{"t": 1, "member": "m", "event": "arrived", "zone": "door"}\n'
                     '{"t": 2, "member": "m", "event": "left", "event": "zone"}\n')
    with pytest.raises(TraceError) as caught:
        read_truth(truth)
    assert str(caught.value) == f'{truth}:2: the key "event" appears twice in one object'
