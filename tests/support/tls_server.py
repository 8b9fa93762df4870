"""Real TLS servers on loopback for the network adapter's tests (threads in this process).

`TlsServer(tmp, handler)` accepts connections on 127.0.0.1, hand-shakes with its own
certificate (`leaf`, or one for `sans` signed by `ca` or self-signed; with `sni_split`, one
per name of `sans`), reads the request head and calls `handler(tls, request)`; a `bytes`
handler is sent as the whole answer. It records the SNI names and request heads it saw.
`SilentListener` accepts and never says a word.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from tests.support import pki

Handler = Callable[[ssl.SSLSocket, bytes], None]
_Self = TypeVar("_Self", bound="_Closing")


def read_head(tls: ssl.SSLSocket, limit: int = 65536) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = tls.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def answer(status: str, body: bytes = b"", headers: tuple[str, ...] = ()) -> bytes:
    """A complete HTTP/1.1 answer with Content-Length."""
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers, "", ""]
    return "\r\n".join(lines).encode() + body


def chunked(status: str, parts: list[bytes], headers: tuple[str, ...] = ()) -> bytes:
    """An HTTP/1.1 answer with a chunked body made of `parts`."""
    lines = [f"HTTP/1.1 {status}", "Transfer-Encoding: chunked", *headers, "", ""]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    return "\r\n".join(lines).encode() + body


class _Closing:
    """`with` closes it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class TlsServer(_Closing):
    def __init__(
        self,
        tmp: Path,
        handler: Handler | bytes,
        sans: tuple[str, ...] = ("web.test",),
        ca: pki.Issued | None = None,
        leaf: pki.Issued | None = None,
        sni_split: bool = False,
    ) -> None:
        self.leaf = leaf or pki.issue(list(sans), ca)
        self.context = self._context(tmp, "main", self.leaf)
        # With `sni_split`, each further name of `sans` gets a leaf of its own (an
        # SNI-multiplexed URL); `leaves` maps every name to the leaf it is served.
        self.leaves = {name: self.leaf for name in sans}
        self._by_name: dict[str, ssl.SSLContext] = {}
        if sni_split:
            for name in sans[1:]:
                self.leaves[name] = pki.issue([name], ca)
                self._by_name[name] = self._context(tmp, name, self.leaves[name])
        self.sni: list[str | None] = []
        self.requests: list[bytes] = []
        self.context.sni_callback = self._note_sni
        self.handler = handler if callable(handler) else self._send(handler)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.workers: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _context(self, tmp: Path, tag: str, leaf: pki.Issued) -> ssl.SSLContext:
        cert, key = tmp / f"{id(self)}-{tag}-c.pem", tmp / f"{id(self)}-{tag}-k.pem"
        cert.write_bytes(leaf.cert_pem)
        key.write_bytes(leaf.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context

    def _note_sni(self, sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.sni.append(name)
        if name in self._by_name:
            sock.context = self._by_name[name]

    @staticmethod
    def _send(data: bytes) -> Handler:
        def handler(tls: ssl.SSLSocket, _request: bytes) -> None:
            tls.sendall(data)

        return handler

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=self._one, args=(raw,), daemon=True)
            self.workers.append(worker)
            worker.start()

    def _one(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            with self.context.wrap_socket(raw, server_side=True) as tls:
                request = read_head(tls)
                self.requests.append(request)
                self.handler(tls, request)
        except (OSError, ssl.SSLError):
            pass
        finally:
            raw.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()
        for worker in self.workers:
            worker.join(timeout=12)


def trickle(head: bytes, interval_s: float, count: int, stop: threading.Event) -> Handler:
    """Sends `head`, then one byte every `interval_s`, `count` times (or until `stop`)."""

    def handler(tls: ssl.SSLSocket, _request: bytes) -> None:
        tls.sendall(head)
        for _ in range(count):
            if stop.wait(interval_s):
                return
            tls.sendall(b"x")

    return handler


def hold(stop: threading.Event, limit_s: float = 10.0) -> Handler:
    """Completes the handshake, reads the request, then says nothing until `stop`."""

    def handler(_tls: ssl.SSLSocket, _request: bytes) -> None:
        stop.wait(limit_s)

    return handler


class SilentListener(_Closing):
    """A TCP listener on 127.0.0.1 that accepts connections and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=16)
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


def elapsed_since(started: float) -> float:
    return time.monotonic() - started
