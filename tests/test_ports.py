"""The test servers' ports: each pytest-xdist worker has its own, so a broker one worker's
fault test killed cannot come back on a port the other worker's broker took meanwhile."""

from __future__ import annotations

import socket

import pytest

from tests.fixtures import ports


def test_workers_take_ports_from_separate_slices_each_at_most_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_handed_out", set())
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    taken = {}
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        taken[worker] = [ports.free_port() for _ in range(200)]
    first, second = set(taken["gw0"]), set(taken["gw1"])
    assert len(first) == len(second) == 200  # none handed out twice
    assert max(first) < min(second)
    assert all(port < 32768 for port in first | second)  # not where outgoing connections bind


def test_a_port_something_listens_on_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    monkeypatch.setattr(ports, "_handed_out", set())
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        taken = server.getsockname()[1]
        # a slice of one port, the one just taken
        monkeypatch.setattr(ports, "FIRST_PORT", taken)
        monkeypatch.setattr(ports, "END_PORT", taken + 1)
        with pytest.raises(RuntimeError, match="no free TCP port left"):
            ports.free_port()
