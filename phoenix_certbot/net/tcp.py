"""Can this host open a TCP connection to ADDRESS:PORT? One bounded connect, nothing sent."""

from __future__ import annotations

import socket

from phoenix_certbot.net.https import seconds


def connect_error(address: str, port: int, timeout_s: float) -> str | None:
    """None when a TCP connection to `address:port` opens within `timeout_s`, else why not
    (one line). `address` is an IP address, as the swarm reports its nodes."""
    try:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(max(timeout_s, 0.01))
            sock.connect((address, port))
    except TimeoutError:
        return f"no answer within {seconds(timeout_s)} s"
    except OSError as exc:
        return exc.strerror or " ".join(str(exc).split())
    return None
