"""The network adapter: one TLS handshake plus one HTTP request, every step bounded in time.

We do not validate the chain against a trust store here: the question is "is THIS
certificate served?", answered by comparing the leaf's SHA-256 with the one on disk, which
works the same for public ACME, Pebble and internal CAs.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True)
class ProbeResult:
    url: str
    server_name: str
    leaf_der: bytes | None = None
    status: int | None = None
    body: bytes = b""
    error: str | None = None  # one line: where it failed (connect, handshake, http)
    stage: str = ""  # "connect" | "tls" | "http" | "" when everything answered

    @property
    def leaf_sha256(self) -> str | None:
        return hashlib.sha256(self.leaf_der).hexdigest() if self.leaf_der else None

    @property
    def http_ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _address(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"not an https URL: {url}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname, parts.port or 443, path


def probe(url: str, server_name: str | None = None, timeout_s: float = 5.0) -> ProbeResult:
    """Connect, handshake with SNI `server_name` (default the URL host), GET the URL path."""
    host, port, path = _address(url)
    sni = server_name or host
    deadline = time.monotonic() + timeout_s

    def remaining() -> float:
        return max(0.05, deadline - time.monotonic())

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # see the module docstring: we pin the leaf instead
    try:
        raw = socket.create_connection((host, port), timeout=remaining())
    except OSError as exc:
        return ProbeResult(
            url, sni, error=f"connect to {host}:{port} failed: {exc}", stage="connect"
        )
    with raw:
        try:
            raw.settimeout(remaining())
            tls = context.wrap_socket(raw, server_hostname=sni)
        except (OSError, ssl.SSLError) as exc:
            return ProbeResult(
                url, sni, error=f"TLS handshake with {host}:{port} failed: {exc}", stage="tls"
            )
        with tls:
            leaf = tls.getpeercert(binary_form=True)
            try:
                status, body = _http_get(tls, sni, path, deadline)
            except (OSError, ValueError) as exc:
                return ProbeResult(
                    url, sni, leaf_der=leaf, error=f"HTTP request failed: {exc}", stage="http"
                )
    return ProbeResult(url, sni, leaf_der=leaf, status=status, body=body)


def _http_get(tls: ssl.SSLSocket, host: str, path: str, deadline: float) -> tuple[int, bytes]:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: phoenix-cert\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    )
    tls.sendall(request.encode("ascii"))
    data = b""
    while len(data) < MAX_RESPONSE_BYTES:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete answer in time")
        tls.settimeout(left)
        try:
            chunk = tls.recv(65536)
        except ssl.SSLZeroReturnError:
            break
        if not chunk:
            break
        data += chunk
        if _complete(data):
            break
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {status_line[:80]!r}")
    return int(parts[1]), body


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value.strip())
    return False  # no length: read until the server closes


def probe_until(
    url: str,
    server_name: str | None,
    expected_sha256: str | None,
    timeout_s: float,
    attempt_timeout_s: float = 5.0,
    max_attempts: int = 60,
) -> tuple[ProbeResult, int]:
    """Probe with backoff until the expected leaf answers 2xx, the time is up, or
    `max_attempts` is reached. Returns the last result and the number of attempts."""
    deadline = time.monotonic() + timeout_s
    delay = 0.25
    result = ProbeResult(url, server_name or "", error="not probed")
    for attempt in range(1, max_attempts + 1):
        result = probe(
            url, server_name, min(attempt_timeout_s, max(0.1, deadline - time.monotonic()))
        )
        matches = expected_sha256 is None or result.leaf_sha256 == expected_sha256
        if result.error is None and matches and result.http_ok:
            return result, attempt
        if time.monotonic() + delay >= deadline:
            return result, attempt
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    return result, max_attempts
