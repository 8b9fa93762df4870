"""`net.https.fetch` against real TLS servers on loopback: HTTP through http.client, one
deadline for the whole exchange, trust by leaf pin, system store or CA file."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phoenix_certbot.errors import BadInput
from phoenix_certbot.net.https import SYSTEM_STORE, Trust, fetch
from tests.support import pki
from tests.support.tls_server import (
    SilentListener,
    TlsServer,
    answer,
    chunked,
    elapsed_since,
    hold,
    trickle,
)

SLACK_S = 0.5  # thread scheduling on a busy 2-core machine


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_a_chunked_answer_is_decoded(tmp_path: Path) -> None:
    body = chunked("200 OK", [b'{"Version": ', b'"2.19.4"}'], ("Content-Type: application/json",))
    with TlsServer(tmp_path, body) as server:
        result = fetch(server.url("/api/system/status"), server_name="web.test", timeout_s=5)
    assert result.error is None and result.status == 200
    assert result.body == b'{"Version": "2.19.4"}'
    assert result.header("content-type") == "application/json"
    assert result.leaf_sha256 == server.leaf.sha256


def test_host_names_the_server_name_and_a_non_default_port(tmp_path: Path) -> None:
    with TlsServer(tmp_path, answer("200 OK", b"ok")) as server:
        fetch(server.url("/x?y=1"), server_name="web.test", timeout_s=5)
    head = server.requests[0].decode()
    assert head.startswith("GET /x?y=1 HTTP/1.1\r\n")
    assert f"\r\nHost: web.test:{server.port}\r\n" in head
    assert server.sni == ["web.test"]


def test_a_redirect_is_an_answer_not_a_dead_server(tmp_path: Path) -> None:
    with TlsServer(tmp_path, answer("302 Found", headers=("Location: /login",))) as server:
        result = fetch(server.url("/"), timeout_s=5)
    assert (result.error, result.status, result.stage) == (None, 302, "")
    assert result.redirect and result.answered and not result.http_ok
    assert result.location == "/login"


def test_headers_are_sent_and_never_reported(tmp_path: Path) -> None:
    secret = "ptr_" + "s3cr3t" * 6
    with TlsServer(tmp_path, answer("401 Unauthorized", b'{"message": "no"}')) as server:
        result = fetch(server.url("/api/endpoints"), headers={"X-API-Key": secret}, timeout_s=5)
    assert f"X-API-Key: {secret}\r\n" in server.requests[0].decode()
    assert result.status == 401
    assert secret not in repr(result)


def test_the_body_is_capped(tmp_path: Path) -> None:
    with TlsServer(tmp_path, answer("200 OK", b"a" * 5000)) as server:
        result = fetch(server.url(), timeout_s=5, max_body=100)
    assert result.body == b"a" * 100


def test_a_trickling_server_is_bounded_by_one_deadline(
    tmp_path: Path, stop: threading.Event
) -> None:
    """One byte every 0.2 s keeps every single read short; only a total deadline helps."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
    with TlsServer(tmp_path, trickle(head, 0.2, 100, stop)) as server:
        started = time.monotonic()
        result = fetch(server.url(), timeout_s=1.5)
        elapsed = elapsed_since(started)
        stop.set()
    assert result.stage == "http"
    assert result.error == "HTTP request failed: no answer within 1.5 s"
    assert elapsed < 1.5 + SLACK_S


def test_a_trickling_head_is_bounded_too(tmp_path: Path, stop: threading.Event) -> None:
    with TlsServer(tmp_path, trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ", 0.2, 100, stop)) as server:
        started = time.monotonic()
        result = fetch(server.url(), timeout_s=1.0)
        elapsed = elapsed_since(started)
        stop.set()
    assert result.stage == "http"
    assert elapsed < 1.0 + SLACK_S


def test_a_server_that_never_answers_after_the_handshake(
    tmp_path: Path, stop: threading.Event
) -> None:
    with TlsServer(tmp_path, hold(stop)) as server:
        started = time.monotonic()
        result = fetch(server.url(), timeout_s=1.0)
        elapsed = elapsed_since(started)
        stop.set()
    assert result.stage == "http" and result.leaf_sha256 == server.leaf.sha256
    assert elapsed < 1.0 + SLACK_S


def test_a_listener_that_never_speaks_fails_the_handshake_in_time() -> None:
    with SilentListener() as silent:
        started = time.monotonic()
        result = fetch(f"https://127.0.0.1:{silent.port}/", timeout_s=1.0)
        elapsed = elapsed_since(started)
    assert result.stage == "tls" and result.leaf_der is None
    assert elapsed < 1.0 + SLACK_S


def test_a_closed_connection_without_an_answer(tmp_path: Path) -> None:
    with TlsServer(tmp_path, b"") as server:
        result = fetch(server.url(), timeout_s=5)
    assert result.stage == "http"
    assert result.error == "HTTP request failed: the server closed the connection without answering"


def test_name_resolution_shares_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """getaddrinfo has no timeout: a resolver that hangs must not hold the caller."""
    release = threading.Event()
    real = socket.getaddrinfo

    def hanging(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "hangs.example.test":
            release.wait(5)
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    started = time.monotonic()
    result = fetch("https://hangs.example.test:1/", timeout_s=0.5)
    elapsed = elapsed_since(started)
    release.set()
    assert result.stage == "connect"
    assert result.error == "cannot resolve hangs.example.test: no answer within 0.5 s"
    assert elapsed < 0.5 + SLACK_S


def test_a_name_resolves(tmp_path: Path) -> None:
    with TlsServer(tmp_path, answer("204 No Content")) as server:
        result = fetch(server.url(host="localhost"), server_name="web.test", timeout_s=5)
    assert (result.error, result.status) == (None, 204)


def test_a_trusted_chain_passes_with_the_ca_file(tmp_path: Path) -> None:
    ca = pki.make_ca()
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(ca.cert_pem)
    with TlsServer(tmp_path, answer("200 OK", b"{}"), sans=("web.test",), ca=ca) as server:
        result = fetch(server.url(), server_name="web.test", trust=Trust(True, bundle))
        wrong_name = fetch(server.url(), server_name="other.test", trust=Trust(True, bundle))
    assert (result.error, result.status) == (None, 200)
    assert wrong_name.untrusted and wrong_name.stage == "tls"
    assert "other.test" in str(wrong_name.error)


def test_a_self_signed_certificate_is_untrusted_by_the_system_store(tmp_path: Path) -> None:
    with TlsServer(tmp_path, answer("200 OK")) as server:
        result = fetch(server.url(), server_name="web.test", trust=SYSTEM_STORE, timeout_s=5)
    assert result.untrusted and result.stage == "tls"
    assert "certificate not trusted: self-signed certificate" in str(result.error)


def test_an_unusable_ca_file_is_bad_input(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(BadInput, match=r"ca\.pem: cannot use as CA bundle"):
        fetch("https://127.0.0.1:1/", trust=Trust(True, junk))
    with pytest.raises(BadInput, match="No such file"):
        fetch("https://127.0.0.1:1/", trust=Trust(True, tmp_path / "missing.pem"))


def test_a_refused_connection_names_the_address() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    result = fetch(f"https://127.0.0.1:{port}/", timeout_s=2)
    assert result.stage == "connect"
    assert str(result.error).startswith(f"connect to 127.0.0.1:{port} failed: ")


def test_the_request_is_not_held_back_by_nagle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request follows the TLS Finished message at once: with Nagle's algorithm it
    waits for the server's delayed ACK (40 ms on Linux), every probe."""
    nodelay: list[int] = []

    class Recording(socket.socket):
        def connect(self, address: Any) -> None:
            nodelay.append(self.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            super().connect(address)

    with TlsServer(tmp_path, answer("200 OK", b"ok")) as server:
        monkeypatch.setattr(socket, "socket", Recording)
        result = fetch(server.url("/"), timeout_s=5)
        monkeypatch.undo()
    assert result.status == 200
    assert nodelay == [1]
