"""The probe against real TLS servers on loopback (threads in this process)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoenix_certbot.net.probe import probe, probe_until
from tests.support.tls_server import SilentListener, TlsServer, answer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TlsServer]:
    with TlsServer(tmp_path, answer("200 OK", b'{"Version": "2.19.4"}')) as s:
        yield s


def test_probe_returns_the_served_leaf_status_and_body(server: TlsServer) -> None:
    result = probe(f"https://127.0.0.1:{server.port}/api/system/status", "web.test", 5)
    assert result.error is None
    assert result.leaf_sha256 == server.leaf.sha256
    assert result.status == 200 and result.body == b'{"Version": "2.19.4"}'
    assert server.sni == ["web.test"]


def test_probe_until_takes_a_redirect_as_an_answer(tmp_path: Path) -> None:
    """A 3xx from `/` is a live server serving the certificate, not a dead one."""
    with TlsServer(tmp_path, answer("302 Found", headers=("Location: /login",))) as s:
        result, attempts = probe_until(s.url(), "web.test", s.leaf.sha256, 5)
    assert (attempts, result.status, result.location) == (1, 302, "/login")


def test_probe_until_stops_at_the_expected_leaf(server: TlsServer) -> None:
    result, attempts = probe_until(
        f"https://127.0.0.1:{server.port}/", "web.test", server.leaf.sha256, 5
    )
    assert attempts == 1 and result.http_ok


def test_probe_until_gives_up_on_the_wrong_leaf_within_its_time(server: TlsServer) -> None:
    started = time.monotonic()
    result, attempts = probe_until(f"https://127.0.0.1:{server.port}/", "web.test", "0" * 64, 1.5)
    assert result.leaf_sha256 == server.leaf.sha256 and attempts >= 2
    assert time.monotonic() - started < 1.5 + 1.0


def test_refused_connection_is_a_connect_failure() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    result = probe(f"https://127.0.0.1:{port}/", None, 2)
    assert result.stage == "connect" and result.leaf_der is None


def test_a_listener_that_never_speaks_is_bounded_by_the_timeout() -> None:
    with SilentListener() as silent:
        started = time.monotonic()
        result = probe(f"https://127.0.0.1:{silent.port}/", None, 1.0)
        elapsed = time.monotonic() - started
    assert result.stage == "tls"
    assert elapsed < 1.0 + 0.5


def test_plain_http_server_is_a_tls_failure(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as plain:
        port = plain.getsockname()[1]

        def answer() -> None:
            conn, _ = plain.accept()
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        t = threading.Thread(target=answer, daemon=True)
        t.start()
        result = probe(f"https://127.0.0.1:{port}/", None, 2)
        t.join(timeout=2)
    assert result.stage == "tls"


def test_non_http_answer_is_an_http_failure(tmp_path: Path) -> None:
    with TlsServer(tmp_path, b"SSH-2.0-nope\r\n") as s:
        result = probe(f"https://127.0.0.1:{s.port}/", "web.test", 2)
    assert result.stage == "http" and result.leaf_sha256 == s.leaf.sha256


def test_only_https_urls() -> None:
    with pytest.raises(ValueError, match="not an https URL"):
        probe("http://127.0.0.1:1/")
