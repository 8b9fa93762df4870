"""A Docker API that stalls on demand: a unix-socket proxy in front of the real daemon.

It forwards every request to the daemon's socket and its answers back, except the requests
a test names with `stall(...)`: those are read and never answered, as a daemon that hangs
would do, so the client's read timeout fires. Nothing of the shared daemon is changed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

UPSTREAM = "/var/run/docker.sock"
_IDLE_S = 0.2  # how often blocked loops look at the stop flag


@dataclass
class _Rule:
    method: str
    path_part: str
    left: int


class StallingProxy:
    def __init__(self, directory: Path, upstream: str = UPSTREAM) -> None:
        self.path = directory / "docker.sock"
        self.upstream = upstream
        self.stalled: list[str] = []  # "METHOD /path" of every request held back
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._server: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def stall(self, method: str, path_part: str, count: int = 1) -> None:
        """Hold back the next `count` requests with this method whose path contains
        `path_part` (e.g. "GET", "/tasks")."""
        with self._lock:
            self._rules.append(_Rule(method, path_part, count))

    def _should_stall(self, method: str, path: str) -> bool:
        with self._lock:
            for rule in self._rules:
                if rule.left > 0 and rule.method == method and rule.path_part in path:
                    rule.left -= 1
                    self.stalled.append(f"{method} {path}")
                    return True
        return False

    # -- running -----------------------------------------------------------------------
    def start(self) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.path))
        server.listen(16)
        server.settimeout(_IDLE_S)
        self._server = server
        self._spawn(self._accept)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        if self._server is not None:
            self._server.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.path.unlink(missing_ok=True)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
            self._track(client)
            self._track(upstream)
            self._spawn(self._answers, upstream, client)
            self._spawn(self._requests, client, upstream)

    def _answers(self, upstream: socket.socket, client: socket.socket) -> None:
        upstream.settimeout(_IDLE_S)
        while not self._stop.is_set():
            try:
                data = upstream.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_WR)
                return
            try:
                client.sendall(data)
            except OSError:
                return

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        for request in self._read_requests(client):
            if request is None:
                return
            head, body = request
            method, path = _request_line(head)
            if self._should_stall(method, path):
                # Never forwarded, never answered: hold the connection until the client
                # gives up (its read timeout) or the test ends.
                self._drain(client)
                return
            try:
                upstream.sendall(head + body)
            except OSError:
                return

    def _drain(self, client: socket.socket) -> None:
        client.settimeout(_IDLE_S)
        while not self._stop.is_set():
            try:
                if not client.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def _read_requests(self, client: socket.socket) -> Iterator[tuple[bytes, bytes] | None]:
        """Each request on a keep-alive connection as (head, body); None when it closes."""
        client.settimeout(_IDLE_S)
        buffer = b""
        while not self._stop.is_set():
            while b"\r\n\r\n" not in buffer:
                chunk = self._recv(client)
                if chunk is None:
                    yield None
                    return
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            head += b"\r\n\r\n"
            length = _content_length(head)
            while len(buffer) < length:
                chunk = self._recv(client)
                if chunk is None:
                    yield None
                    return
                buffer += chunk
            body, buffer = buffer[:length], buffer[length:]
            yield head, body

    def _recv(self, client: socket.socket) -> bytes | None:
        while not self._stop.is_set():
            try:
                data = client.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return None
            return data or None
        return None


def _request_line(head: bytes) -> tuple[str, str]:
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
    return (parts[0], parts[1]) if len(parts) >= 2 else ("", "")


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return 0


@contextlib.contextmanager
def stalling_proxy(directory: Path) -> Iterator[StallingProxy]:
    proxy = StallingProxy(directory)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
