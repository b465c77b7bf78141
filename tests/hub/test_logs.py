"""Structured logging to journald's native socket (a real datagram socket stands in for it)."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import textwrap
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


#: A server with few file descriptors, logging as the hub does: connections beyond them make
#: asyncio log "socket.accept() out of system resource" on every retry.
FEW_FILES = textwrap.dedent('''
    import asyncio, resource, sys
    from hub.logs import configure
    configure()
    resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))
    async def main():
        async def hold(reader, writer):
            await asyncio.sleep(30)
        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(4)
    asyncio.run(main())
''')


def test_running_out_of_files_is_logged_once_a_minute_not_per_retry() -> None:
    """Why: with every file descriptor in use, asyncio logged a traceback per retry of each
    waiting connection: 167 MB of log in 53 s, the event loop busy writing it."""
    child = subprocess.Popen([sys.executable, "-c", FEW_FILES], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    port = int(child.stdout.readline())
    held = []
    try:
        for _ in range(120):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        _, stderr = child.communicate(timeout=30)
    finally:
        for conn in held:
            conn.close()
    assert stderr.count("out of system resource") == 1, stderr[-2000:]
