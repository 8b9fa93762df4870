"""One bounded TCP connect (real sockets on loopback)."""

from __future__ import annotations

import socket

from phoenix_certbot.net.tcp import connect_error


def test_open_and_closed_ports() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert connect_error("127.0.0.1", port, 2) is None
    assert connect_error("127.0.0.1", port, 2) == "Connection refused"
