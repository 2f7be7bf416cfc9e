"""Unit tests need no services: no database is made for them (tests/conftest.py), and a unit test
that opens a network connection (to Postgres, Redis, the teacher, anything) fails."""

import socket
from typing import Any

import pytest

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _refuse(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        raise AssertionError(f"a unit test connected to {address!r}: it belongs in a tier with services")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def connect(sock: socket.socket, address: Any) -> None:
        _refuse(sock, address)
        _connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        _refuse(sock, address)
        return _connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
