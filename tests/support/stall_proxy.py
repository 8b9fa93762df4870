"""A Docker API that stops answering: a proxy in front of an engine's unix socket.

Point the process under test at it with `DOCKER_HOST=unix://<proxy.path>`. It forwards
every request and response unchanged until told to stall:

- `stall()`: every request not yet forwarded (on a new connection or a kept-alive one) is
  accepted and never answered; requests already forwarded still get their responses.
- `stall(in_flight=True)`: responses stop too, so a request already sent hangs as well.
- `stall_after(match)`: forward requests normally until one for which `match(method,
  path)` holds has been forwarded, then stall new requests. A test can thus stall exactly
  after the tool's service update was accepted (`POST /services/ID/update`). With
  `in_flight=True` that request's own response is held too: the engine did the work and
  the client never hears of it, an unknown outcome.
- `resume()` forwards what was held, in order; `close()` drops every connection.

Requests are followed in the client's stream (request line, headers, a `Content-Length`
body); the Docker SDK and CLI send no chunked request bodies to the calls the tool makes.
Every thread ends at `close()`, and a held request is dropped after `MAX_HOLD_S`.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ENGINE_SOCKET = "/var/run/docker.sock"
MAX_HEAD = 64 * 1024
MAX_HOLD_S = 600.0

Match = Callable[[str, str], bool]


class StallingProxy:
    """`with StallingProxy(upstream) as proxy:` ... `proxy.docker_host`."""

    def __init__(self, upstream: str = ENGINE_SOCKET) -> None:
        self.upstream = upstream
        self.requests: list[tuple[float, str, str]] = []  # (time, method, path) forwarded
        self.held: list[tuple[float, str, str]] = []  # requests that arrived while stalled
        self._dir = Path(tempfile.mkdtemp(prefix="phxstall-"))
        self.path = self._dir / "docker.sock"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._state = threading.Condition()
        self._stall_new = False
        self._stall_in_flight = False
        self._trigger: Match | None = None
        self._trigger_in_flight = False
        self._closed = False
        self.stalled_at: float | None = None

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> StallingProxy:
        self._listener.bind(str(self.path))
        self._listener.listen(64)
        self._spawn(self._accept)
        return self

    def __enter__(self) -> StallingProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- switches -------------------------------------------------------------------------
    def stall(self, *, in_flight: bool = False) -> None:
        with self._state:
            self._stall_new = True
            self._stall_in_flight = in_flight
            self.stalled_at = self.stalled_at or time.time()
            self._state.notify_all()

    def stall_after(self, match: Match, *, in_flight: bool = False) -> None:
        with self._state:
            self._trigger = match
            self._trigger_in_flight = in_flight

    def resume(self) -> None:
        with self._state:
            self._stall_new = self._stall_in_flight = False
            self._trigger = None
            self._state.notify_all()

    def wait_stalled(self, timeout_s: float) -> float:
        """Wait until the proxy stalls (after `stall_after`'s request); returns when."""
        with self._state:
            self._state.wait_for(lambda: self.stalled_at is not None or self._closed, timeout_s)
            if self.stalled_at is None:
                raise AssertionError(f"the proxy did not stall within {timeout_s:g} s")
            return self.stalled_at

    def close(self) -> None:
        with self._state:
            if self._closed:
                return
            self._closed = True
            self._state.notify_all()
            sockets = list(self._sockets)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
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

    def _hold(self, stalled: Callable[[], bool]) -> bool:
        """Block while `stalled()`; False when the proxy closed or the hold ran out."""
        with self._state:
            released = self._state.wait_for(lambda: self._closed or not stalled(), MAX_HOLD_S)
            return released and not self._closed

    def _fire(self, method: str, path: str) -> None:
        with self._state:
            trigger, self._trigger = self._trigger, None
        if trigger is not None and not trigger(method, path):
            with self._state:
                self._trigger = self._trigger or trigger  # not this one: keep waiting
        elif trigger is not None:
            self.stall(in_flight=self._trigger_in_flight)

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
            with self._state:
                self._sockets += [client, upstream]
            self._spawn(self._requests, client, upstream)
            self._spawn(self._responses, upstream, client)

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        buffer = b""
        try:
            while True:
                end = buffer.find(b"\r\n\r\n")
                while end < 0:
                    data = client.recv(65536)
                    if not data or len(buffer) > MAX_HEAD:
                        return
                    buffer += data
                    end = buffer.find(b"\r\n\r\n")
                head, buffer = buffer[: end + 4], buffer[end + 4 :]
                method, path, length = _parse_head(head)
                if self._stall_new:
                    self.held.append((time.time(), method, path))
                if not self._hold(lambda: self._stall_new):
                    return
                while len(buffer) < length:
                    data = client.recv(65536)
                    if not data:
                        return
                    buffer += data
                self._fire(method, path)  # before sending: its response may be held
                upstream.sendall(head + buffer[:length])
                buffer = buffer[length:]
                self.requests.append((time.time(), method, path))
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)

    def _responses(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if not self._hold(lambda: self._stall_in_flight):
                    return
                client.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)


def _parse_head(head: bytes) -> tuple[str, str, int]:
    """(method, path, Content-Length) of one request head."""
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, _, rest = request_line.partition(" ")
    length = 0
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    return method, rest.rsplit(" ", 1)[0], length
