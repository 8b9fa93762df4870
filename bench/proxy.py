"""A counting proxy between a Docker client and the engine's unix socket.

Point a process at it with DOCKER_HOST=unix://<path>: every HTTP request that process
sends to the engine passes here and is recorded (method and path), whatever library sent
it. Bytes are forwarded unchanged in both directions; the requests are parsed from a copy
of the client's stream (request line, headers, a Content-Length body is skipped). A
chunked request body cannot be followed: the connection is then marked `uncertain`.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

ENGINE_SOCKET = "/var/run/docker.sock"
MAX_HEAD = 64 * 1024
_VERSION = re.compile(r"^/v\d+(\.\d+)?(?=/)")


def endpoint(path: str) -> str:
    """`/v1.41/services/abc/update?version=3` -> `/services/{id}/update`; a filtered
    listing keeps a mark: `/v1.41/tasks?filters=...` -> `/tasks?filters`."""
    path, _, query = path.partition("?")
    path = _VERSION.sub("", path)
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[1] != "create":
        parts[1] = "{id}"
    filtered = "?filters" if any(p.startswith("filters=") for p in query.split("&")) else ""
    return "/" + "/".join(parts) + filtered


class RequestParser:
    """Follows HTTP/1.1 requests in a client's byte stream; calls `record` for each."""

    def __init__(self, record: Callable[[str, str], None]) -> None:
        self._record = record
        self._buffer = bytearray()
        self._body_left = 0
        self.uncertain = False

    def feed(self, data: bytes) -> None:
        if self.uncertain:
            return
        self._buffer += data
        while True:
            if self._body_left:
                taken = min(self._body_left, len(self._buffer))
                del self._buffer[:taken]
                self._body_left -= taken
                if self._body_left:
                    return
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    self.uncertain = True
                return
            head = bytes(self._buffer[:end]).decode("latin-1")
            del self._buffer[: end + 4]
            request_line, *header_lines = head.split("\r\n")
            method, _, rest = request_line.partition(" ")
            self._record(method, rest.rsplit(" ", 1)[0])
            for line in header_lines:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip()
                if name == "content-length" and value.isdigit():
                    self._body_left = int(value)
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    self.uncertain = True
                    return


class CountingProxy:
    """`with CountingProxy() as proxy:` ... `proxy.docker_host`, `proxy.requests`."""

    def __init__(self, upstream: str = ENGINE_SOCKET) -> None:
        self.upstream = upstream
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.times: list[float] = []  # time.time() when each request's head was read
        self.uncertain = False
        self._lock = threading.Lock()
        self._dir = Path(tempfile.mkdtemp(prefix="phxbench-proxy-"))
        self.path = self._dir / "docker.sock"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def __enter__(self) -> CountingProxy:
        self._listener.bind(str(self.path))
        self._listener.listen(64)
        self._spawn(self._accept)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.times.clear()
            self.uncertain = False

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(f"{m} {endpoint(p)}" for m, p in self.requests)

    def total(self) -> int:
        with self._lock:
            return len(self.requests)

    def timeline(self) -> list[tuple[float, str]]:
        """(time.time(), "METHOD /endpoint") of every request so far, in order."""
        with self._lock:
            pairs = zip(self.times, self.requests, strict=True)
            return [(t, f"{m} {endpoint(p)}") for t, (m, p) in pairs]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- internals ------------------------------------------------------------------------
    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))
            self.times.append(time.time())

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.upstream)
            except OSError:
                client.close()
                upstream.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            parser = RequestParser(self._record)
            self._spawn(self._pump, client, upstream, parser)
            self._spawn(self._pump, upstream, client, None)

    def _pump(
        self, source: socket.socket, sink: socket.socket, parser: RequestParser | None
    ) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if parser is not None:
                    parser.feed(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            if parser is not None and parser.uncertain:
                with self._lock:
                    self.uncertain = True
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
