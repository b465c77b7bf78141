"""The asyncio glue around paho's client (sync/mqtt_client.py)."""

from __future__ import annotations

import asyncio
import threading

import paho.mqtt.client as paho

from sync.mqtt_client import Session


def test_a_client_let_go_after_its_loop_closed_says_nothing() -> None:
    """Why: a paho client collected after the event loop it reported to had closed (at the end
    of a test, or of the process) told that loop its socket was gone from its ``__del__``, which
    raised on the closed loop: an "exception ignored" traceback in the suite's output."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    loop = asyncio.new_event_loop()
    Session(client, loop, 10, lambda _message: None, v5=False)
    loop.close()
    raised: list[BaseException] = []

    def collected() -> None:  # paho's __del__ runs in whichever thread lets go of it last
        try:
            client.on_socket_unregister_write(client, None, None)
            client.on_socket_close(client, None, None)
        except BaseException as exc:  # noqa: BLE001 - what the test looks for
            raised.append(exc)

    thread = threading.Thread(target=collected)
    thread.start()
    thread.join(timeout=10)
    assert raised == []
