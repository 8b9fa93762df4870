"""Cheap checks of the benchmarks' measuring parts (no Docker, a few seconds): they return
numbers, and the request-counting proxy counts what passes through it. No speed asserted."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from bench.common import PHOENIX_CERT, VENV_BIN
from bench.proxy import CountingProxy, endpoint
from bench.startup import Command, time_commands


def test_time_commands_returns_wall_times_and_peak_rss() -> None:
    timings = time_commands(
        {
            "python": Command((str(VENV_BIN / "python"), "-c", "pass")),
            "help": Command((str(PHOENIX_CERT), "--help")),
        },
        repeat=2,
        warmup=0,
    )
    assert set(timings) == {"python", "help"}
    for timing in timings.values():
        assert len(timing.wall.values) == 2
        assert all(0 < v < 30 for v in timing.wall.values)
        # The launcher keeps the benchmark's own size out of the child's peak RSS.
        assert all(1024 < v < 1024 * 1024 for v in timing.rss_kib.values)


def _sink(listener: socket.socket, received: list[bytes]) -> None:
    """A stand-in engine: takes one connection and reads it to the end."""
    conn, _ = listener.accept()
    with conn:
        while chunk := conn.recv(65536):
            received.append(chunk)


def test_counting_proxy_counts_requests_and_skips_bodies(tmp_path: Path) -> None:
    engine = tmp_path / "engine.sock"
    received: list[bytes] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(engine))
        listener.listen(1)
        sink = threading.Thread(target=_sink, args=(listener, received), daemon=True)
        sink.start()
        body = b'{"Name": "x\\r\\n\\r\\nGET /fake HTTP/1.1"}'
        stream = (
            b"GET /v1.41/info HTTP/1.1\r\nHost: docker\r\n\r\n"
            b"POST /v1.41/secrets/create HTTP/1.1\r\nHost: docker\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            + b"GET /v1.41/services/abc123?insertDefaults=false HTTP/1.1\r\nHost: docker\r\n\r\n"
        )  # fmt: skip
        with CountingProxy(upstream=str(engine)) as proxy:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(str(proxy.path))
                for i in range(0, len(stream), 7):  # split anywhere, as TCP may
                    client.sendall(stream[i : i + 7])
                client.shutdown(socket.SHUT_WR)
                sink.join(10)
            deadline = time.monotonic() + 10
            while proxy.total() < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            counts = proxy.counts()
    assert b"".join(received) == stream
    assert counts == {"GET /info": 1, "POST /secrets/create": 1, "GET /services/{id}": 1}
    assert not proxy.uncertain


def test_endpoint_names_collections_not_objects() -> None:
    assert endpoint("/v1.41/services/abc/update?version=3") == "/services/{id}/update"
    assert endpoint("/version") == "/version"
    assert endpoint("/v1.41/secrets/create") == "/secrets/create"
    assert endpoint("/v1.41/tasks?filters=x") == "/tasks"
