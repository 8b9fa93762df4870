"""Which certificate does 127.0.0.1:PORT (or HOST:PORT) serve? The tests' own TLS client,
and a small TLS server for probe tests."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from tests.support import pki


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


class TlsServer:
    """Serves one canned HTTP answer over TLS on loopback, one connection at a time, until
    closed. With several `sans`, each SNI name gets a certificate of its own (an
    SNI-multiplexed URL); `leaf` is the first one's."""

    def __init__(self, tmp: Path, answer: bytes, sans: tuple[str, ...] = ("web.test",)) -> None:
        self.leaves: dict[str, pki.Issued] = {}
        contexts: dict[str, ssl.SSLContext] = {}
        for names in [[n] for n in sans] if len(sans) > 1 else [list(sans)]:
            name, leaf = names[0], pki.issue(names)
            cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
            cert.write_bytes(leaf.cert_pem)
            key.write_bytes(leaf.key_pem)
            contexts[name] = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            contexts[name].load_cert_chain(cert, key)
            self.leaves[name] = leaf
        self.leaf = self.leaves[sans[0]]
        self.context = contexts[sans[0]]
        self.answer = answer
        self.sni: list[str | None] = []

        def pick(sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
            self.sni.append(name)
            if name in contexts:
                sock.context = contexts[name]

        self.context.sni_callback = pick
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}/"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except TimeoutError:
                continue
            raw.settimeout(2)
            try:
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(4096)
                    tls.sendall(self.answer)
            except (OSError, ssl.SSLError):
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()
