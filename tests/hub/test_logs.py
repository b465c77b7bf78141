"""Structured logging to journald's native socket (a real datagram socket stands in for it)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from hub.logs import JournalHandler, encode


def parse(datagram: bytes) -> dict[str, str]:
    fields, i = {}, 0
    while i < len(datagram):
        newline = datagram.index(b"\n", i)
        line = datagram[i:newline]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            fields[key.decode()] = value.decode()
            i = newline + 1
        else:
            size = int.from_bytes(datagram[newline + 1:newline + 9], "little")
            fields[line.decode()] = datagram[newline + 9:newline + 9 + size].decode()
            i = newline + 9 + size + 1
    return fields


def test_records_reach_the_journal_with_fields(tmp_path: Path) -> None:
    path = tmp_path / "journal.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    handler = JournalHandler(path, store_id="s-1")
    logger = logging.getLogger("hub.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.warning("order %s expired\nsecond line", "A1", extra={"order_id": "A1"})
        fields = parse(server.recv(65536))
    finally:
        logger.removeHandler(handler)
        handler.close()
        server.close()
    assert fields["MESSAGE"] == "order A1 expired\nsecond line"
    assert fields["PRIORITY"] == "4"
    assert fields["LOGGER"] == "hub.test_logs"
    assert fields["STORE_ID"] == "s-1"
    assert fields["ORDER_ID"] == "A1"
    assert fields["SYSLOG_IDENTIFIER"] == "retail-hub"


def test_encoding_sanitises_keys() -> None:
    assert encode({"bad key!": "v"}) == b"bad_key_=v\n"
