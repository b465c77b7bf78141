"""The protocol's pure parts: envelopes, data schemas, topics, backoff."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import msgspec
import pytest
import yaml

from sync import messages
from sync.backoff import Backoff
from sync.envelope import ProtocolError, build, decode, decode_data
from sync.mqtt_client import within
from sync.topics import StoreTopics, parse_topic

ASYNCAPI = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_envelope_round_trip_keeps_raw_data() -> None:
    payload = build(store="s-1", epoch=7, seq=42, type_="stock.movement", ts=1.5,
                    data=b'{"a":1}', prev=41)
    env = decode(payload, 1024)
    assert (env.store, env.epoch, env.seq, env.type, env.ts, env.schema, env.prev) == (
        "s-1", 7, 42, "stock.movement", 1.5, 1, 41)
    assert bytes(env.data) == b'{"a":1}'
    assert len(env.id) == 26


@pytest.mark.parametrize(("payload", "reason"), [
    (b"x" * 2000, "too_large"),
    (b"{", "malformed_json"),
    (b"[]", "invalid_envelope"),
    (json.dumps({"id": "01J0000000000000000000000Z", "store": "s", "epoch": 0, "seq": -1,
                 "type": "a", "ts": 0, "schema": 1, "data": {}}).encode(), "invalid_envelope"),
    (json.dumps({"id": "not-a-ulid", "store": "s", "epoch": 0, "seq": 1, "type": "a", "ts": 0,
                 "schema": 1, "data": {}}).encode(), "invalid_envelope"),
    (json.dumps({"id": "01J0000000000000000000000Z", "store": "s", "epoch": 0, "seq": 1,
                 "type": "a", "ts": 0, "schema": 1, "data": {}, "extra": 1}).encode(),
     "invalid_envelope"),
    (json.dumps({"id": "01J0000000000000000000000Z", "store": "s", "epoch": 0, "seq": 2**63,
                 "type": "a", "ts": 0, "schema": 1, "data": {}}).encode(), "invalid_envelope"),
    (json.dumps({"id": "01J0000000000000000000000Z", "store": "s", "epoch": 0, "seq": 1,
                 "type": "a", "ts": 0, "schema": 2, "data": {}}).encode(), "unsupported_schema"),
])
def test_decode_refuses_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(payload, 1024)
    assert caught.value.reason == reason


def test_a_key_given_twice_is_refused_in_the_envelope_and_in_its_data() -> None:
    """Why: msgspec keeps the last of two keys, so "seq": 5, "seq": 500 was seq 500 and
    "qty": 1, "qty": 100 was 100, where a reader taking the first applied another message.
    The envelope's repeat is the envelope's fault; one in data is ``invalid_data``, so an event
    is still recorded and a command still answered."""
    event = build(store="s-1", epoch=7, seq=5, type_="stock.movement", ts=1.5,
                  data={"seq": 5, "ts": 1.5, "store": "s-1", "qty": 1}, prev=4)
    assert decode_data(decode(event, 1024), dict) == {"seq": 5, "ts": 1.5, "store": "s-1",
                                                      "qty": 1}  # its keys again, once each
    for twice in (b'"seq":5,"seq":500', b'"seq":5,"s\\u0065q":500'):  # escaped, the same key
        with pytest.raises(ProtocolError) as caught:
            decode(event.replace(b'"seq":5,"type"', twice + b',"type"'), 1024)
        assert (caught.value.reason, caught.value.message) == (
            "invalid_envelope", 'the key "seq" appears twice in the envelope')
    with pytest.raises(ProtocolError) as caught:  # a second data: which one is the message?
        decode(event.replace(b'"data":', b'"data":{"qty":100},"data":'), 1024)
    assert caught.value.message == 'the key "data" appears twice in the envelope'
    nested = decode(event.replace(b'"qty":1}', b'"qty":1,"lines":[{"qty":1,"qty":100}]}'), 1024)
    with pytest.raises(ProtocolError) as caught:
        decode_data(nested, dict)
    assert (caught.value.reason, caught.value.message) == (
        "invalid_data", 'stock.movement: the key "qty" appears twice in one object')


def test_commands_are_strict_and_events_lenient() -> None:
    strict = decode(build(store="s", epoch=0, seq=1, type_="order.place", ts=0,
                          data={"id": "o1", "lines": [{"sku": "A", "qty": 1}], "x": 1}), 4096)
    with pytest.raises(ProtocolError) as caught:
        decode_data(strict, messages.OrderPlace)
    assert caught.value.reason == "invalid_data"
    lenient = decode(build(store="s", epoch=0, seq=1, type_="stock.snapshot", ts=0,
                           data={"sku": "A", "on_hand": 1, "reserved": 0, "available": 1,
                                 "seq": 3, "new_field": True}), 4096)
    assert decode_data(lenient, messages.StockSnapshot).seq == 3


def test_topics_route_known_types_and_keep_unknown_ones() -> None:
    topics = StoreTopics("retail", "s-1")
    assert topics.event("stock.movement") == "retail/v1/s-1/events/stock"
    assert topics.event("order.status") == "retail/v1/s-1/events/order"
    assert topics.event("loyalty.points") == "retail/v1/s-1/events/other"
    parsed = parse_topic("retail", topics.snapshot("OAT-1"))
    assert parsed is not None and (parsed.store, parsed.channel, parsed.rest) == (
        "s-1", "snapshot", ("stock", "OAT-1"))
    assert parse_topic("retail", "retail/v2/s-1/state") is None
    assert parse_topic("retail", "other/v1/s-1/state") is None


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    low, high = Backoff(1.0, 8.0, random=lambda: 0.0), Backoff(1.0, 8.0, random=lambda: 1.0)
    assert [low.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [high.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    high.reset()
    assert high.next() == 1.0
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0)


def _schemas() -> dict[str, dict[str, object]]:
    doc = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    assert doc["asyncapi"].startswith("3.")
    return doc["components"]["schemas"]


def _resolvable(schemas: dict[str, dict[str, object]], name: str) -> dict[str, object]:
    """Schema ``name`` with the document's other schemas beside it, its refs pointing there."""
    schema = {**schemas[name], "$defs": schemas}
    return json.loads(json.dumps(schema).replace("#/components/schemas/", "#/$defs/"))


@pytest.mark.parametrize(("schema", "type_", "data"), [
    ("StockMovement", "stock.movement", {
        "movement_id": "01J0000000000000000000000Z", "seq": 5, "sku": "A", "qty": -1,
        "reserved_qty": 0, "reason": "sale", "ref": None, "order_id": None, "flagged": False,
        "note": None, "ts": 1.0, "on_hand": 3, "reserved": 0, "available": 3}),
    ("StockSnapshot", "stock.snapshot", messages.StockSnapshot(
        sku="A", on_hand=3, reserved=1, available=2, seq=5)),
    ("StoreState", "store.state", messages.StoreState(
        state="online", epoch=1, last_seq=5, acked_seq=4, inherited_seq=3)),
    ("Ack", "sync.ack", messages.Ack(acked_seq=4)),
    ("OrderPlace", "order.place", messages.OrderPlace(
        id="o-1", member="m-1", lines=[messages.OrderLine(sku="A", qty=2)])),
    ("Resync", "sync.resync", messages.Resync(after_seq=4, snapshots=True)),
    ("StoreRecover", "store.recover", messages.StoreRecover(epoch=3, events=[
        messages.RecoveredEvent(seq=9, type="stock.movement", ts=1.0, data={
            "movement_id": "01J0000000000000000000000Z", "sku": "A", "qty": 1,
            "reason": "adjustment", "counted": 7})])),
    ("CommandResult", "command.result", messages.CommandResult(
        command_id="01J0000000000000000000000Z", command_type="order.place", status="applied")),
    ("OrderStatus", "order.status", messages.OrderStatus(
        id="o-1", state="rejected", reason="not sold in this store: X",
        reason_code="not_sold_here", created_at=1.0, updated_at=2.0,
        lines=[messages.EventOrderLine(sku="X", qty=1)])),
    ("BeaconHealth", "beacon.health", {"beacon": "door-1", "kind": "battery_low", "active": True,
                                       "t": 1.0, "battery_mv": 2100}),
])
def test_the_asyncapi_document_describes_what_is_sent(schema: str, type_: str,
                                                       data: object) -> None:
    schemas = _schemas()
    payload = json.loads(build(store="s-1", epoch=1, seq=5, type_=type_, ts=1.0,
                               data=data if not isinstance(data, dict) else data,
                               prev=4 if type_ == "stock.movement" else None))
    jsonschema.validate(payload, _resolvable(schemas, "Envelope"))
    jsonschema.validate(payload["data"], _resolvable(schemas, schema))
    assert msgspec.json.decode(json.dumps(payload).encode())["type"] == type_


@pytest.mark.parametrize(("schema", "struct", "data"), [
    ("OrderPlace", messages.OrderPlace, {"id": "o-1", "member": "ann@example.com",
                                         "lines": [{"sku": "A", "qty": 1}]}),
    ("MemberUpsert", messages.MemberUpsert, {"id": "bob@example.com", "consent": True}),
    # Why: a name with a NUL or a line break was stored and shown to staff as it came
    ("MemberUpsert", messages.MemberUpsert, {"id": "bob", "display_name": "a\x00b\n<i>",
                                             "consent": False}),
    ("OrderCancel", messages.OrderCancel, {"id": "no such order!"}),
])
def test_the_asyncapi_document_refuses_ids_the_hub_refuses(
        schema: str, struct: type, data: dict[str, object]) -> None:
    """Why: the document had these ids as any string, so a shop using e-mail addresses as
    member ids sent commands it believed valid and had them dead-lettered."""
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, _resolvable(_schemas(), schema))
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(data, struct)


@pytest.mark.parametrize(("struct", "data"), [
    (messages.MemberUpsert, {"id": "ann\n", "consent": True}),
    (messages.MemberUpsert, {"id": "ann", "consent": True, "beacon_key": "0" * 32 + "\n"}),
    (messages.OrderPlace, {"id": "o-1", "lines": [{"sku": "A\n", "qty": 1}]}),
])
def test_a_trailing_newline_is_not_part_of_a_valid_id(struct: type,
                                                      data: dict[str, object]) -> None:
    """Why: msgspec checks patterns with re.search, where '$' also matches before a final
    newline, so a command could carry 'ann\\n' as a member id."""
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(data, struct)


def test_an_envelope_whose_store_ends_in_a_newline_is_refused() -> None:
    payload = build(store="s-1", epoch=0, seq=1, type_="a", ts=0, data={})
    with pytest.raises(ProtocolError) as caught:
        decode(payload.replace(b'"s-1"', b'"s-1\\n"'), 1024)
    assert caught.value.reason == "invalid_envelope"


async def test_a_stop_during_a_reply_is_not_lost() -> None:
    """Why: asyncio.wait_for on Python 3.11 returns the result when the awaited future completes
    in the same loop step as the cancel, losing the cancellation; the connection task then ran on
    and stop() waited on it forever (a hub or shop that never stopped after broker restarts).
    """
    loop = asyncio.get_running_loop()
    connack: asyncio.Future[str] = loop.create_future()
    waiting = asyncio.create_task(within(asyncio.shield(connack), 10))
    await asyncio.sleep(0)
    connack.set_result("CONNACK")
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    late: asyncio.Future[str] = loop.create_future()
    with pytest.raises(TimeoutError):
        await within(late, 0.01)
