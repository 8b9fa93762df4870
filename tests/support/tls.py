"""Which certificate does 127.0.0.1:PORT (or HOST:PORT) serve? The tests' own TLS client,
and a small TLS server for probe tests."""

from __future__ import annotations

import hashlib
import socket
import ssl
import time

import pytest


def no_verify() -> ssl.SSLContext:
    # The question is which certificate is served, not whether it is trusted.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def served_sha256(
    port: int, server_name: str | None = None, timeout: float = 15.0, host: str = "127.0.0.1"
) -> str:
    """SHA-256 of the DER leaf served on host:port, retrying while nothing listens."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    for _attempt in range(int(timeout / 0.2) + 1):
        try:
            with (
                socket.create_connection((host, port), timeout=3) as sock,
                no_verify().wrap_socket(sock, server_hostname=server_name) as tls,
            ):
                der = tls.getpeercert(binary_form=True)
                assert der is not None
                return hashlib.sha256(der).hexdigest()
        except OSError as exc:
            last = exc
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    pytest.fail(f"no TLS handshake on {host}:{port} within {timeout} s: {last}")
