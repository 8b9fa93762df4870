"""Free TCP ports for host-mode publishing."""

from __future__ import annotations

import socket

# Ports already handed out in this process: the kernel may offer the same free port twice
# if the first caller has not bound it yet.
_handed_out: set[int] = set()


def free_port(attempts: int = 50) -> int:
    """A TCP port that nothing listens on, on any address.

    Swarm's host-mode publishing binds 0.0.0.0:PORT, so the port is checked on all addresses;
    tests only ever connect to it on 127.0.0.1.
    """
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("0.0.0.0", 0))  # noqa: S104 - probing, nothing is served here
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no unused free port after {attempts} attempts")
