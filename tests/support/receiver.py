"""HTTP receivers on loopback for notification tests: one that records what Apprise's
`json://` posts, and one that accepts connections and never answers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A path segment that stands for a webhook token: it must never show up in any output.
TOKEN = "tok3n-s3cr3t-do-not-print"


@dataclass
class Received:
    port: int
    bodies: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    status: int = 200

    @property
    def url(self) -> str:
        """The Apprise URL of this receiver, with a secret in its path."""
        return f"json://127.0.0.1:{self.port}/hook/{TOKEN}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        for _attempt in range(int(timeout / 0.05) + 1):
            if len(self.bodies) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return list(self.bodies)


@contextmanager
def json_receiver(status: int = 200) -> Iterator[Received]:
    """A loopback HTTP server that records every POST body (Apprise's json:// payload)."""
    received = Received(0, status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.raw.append(data)
            received.bodies.append(json.loads(data))
            self.send_response(received.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def silent_receiver() -> Iterator[str]:
    """A loopback port that accepts connections and reads, but never answers; yields its
    Apprise URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)  # kept open, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"json://127.0.0.1:{listener.getsockname()[1]}/hook/{TOKEN}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()
