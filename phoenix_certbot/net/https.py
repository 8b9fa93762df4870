"""One HTTPS request under one deadline: name resolution, TCP connect, TLS handshake, the
request and the whole answer share a single time bound.

`http.client` speaks HTTP (chunked bodies, `Host` with a non-default port, headers) over a
socket we open ourselves; every read gets only the time left, so a server that accepts and
never answers, or trickles one byte a second, cannot hold the caller past `timeout_s`.

Trust is the caller's choice: `PIN_LEAF` checks nothing (the caller compares the served
leaf with the one on disk, which works the same for public ACME, Pebble and internal CAs);
`Trust(verify=True)` checks the chain and the name against the system store or a PEM file.
Header values (an API key) never appear in a result, an error or a log line.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from phoenix_certbot.errors import BadInput

MAX_BODY_BYTES = 256 * 1024
_MIN_STEP_S = 0.01


@dataclass(frozen=True)
class Trust:
    """How the server's certificate is checked."""

    verify: bool = False
    ca_file: Path | None = None  # PEM bundle; None: the system store (when verify)

    def context(self) -> ssl.SSLContext:
        if not self.verify:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # see PIN_LEAF: the caller pins the leaf
            return context
        if self.ca_file is None:
            return ssl.create_default_context()
        try:
            return ssl.create_default_context(cafile=str(self.ca_file))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or "no PEM certificate in it"
            raise BadInput(f"{self.ca_file}: cannot use as CA bundle: {reason}") from None


PIN_LEAF = Trust()
SYSTEM_STORE = Trust(verify=True)


@dataclass(frozen=True)
class HttpsResult:
    """What one request found out. `error` is one line saying where it failed; `stage` is
    "connect" (name or TCP), "tls", "http", or "" when a complete answer came back."""

    url: str
    server_name: str
    leaf_der: bytes | None = None
    status: int | None = None
    body: bytes = b""
    error: str | None = None
    stage: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    untrusted: bool = False  # the handshake failed because the certificate is not trusted

    @property
    def leaf_sha256(self) -> str | None:
        return hashlib.sha256(self.leaf_der).hexdigest() if self.leaf_der else None

    @property
    def http_ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def redirect(self) -> bool:
        return self.status is not None and 300 <= self.status < 400

    @property
    def answered(self) -> bool:
        """The application answered: 2xx, or a redirect (a live server, not a dead one)."""
        return self.error is None and (self.http_ok or self.redirect)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    @property
    def location(self) -> str | None:
        return self.header("Location") if self.redirect else None


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    target: str  # path and query

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_url(url: str) -> Address:
    """Host, port and request target of an https URL; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"not an https URL: {url}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Address(parts.hostname, parts.port or 443, target)


def seconds(value: float) -> str:
    """A duration for a message: 5, 1.5, 2.8 (not 2.77435)."""
    return f"{value:.1f}".removesuffix(".0")


class _Deadline:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.at = time.monotonic() + timeout_s

    def left(self) -> float:
        """Seconds left; TimeoutError once the bound is spent."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer within {seconds(self.timeout_s)} s")
        return max(left, _MIN_STEP_S)


def fetch(
    url: str,
    *,
    server_name: str | None = None,
    trust: Trust = PIN_LEAF,
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
    timeout_s: float = 5.0,
    max_body: int = MAX_BODY_BYTES,
) -> HttpsResult:
    """Resolve, connect, hand-shake with SNI `server_name` (default the URL host), send one
    request and read the answer (at most `max_body` bytes of body), all within `timeout_s`.

    Never raises for what the network does; raises ValueError for a URL that is not https
    and BadInput for an unusable CA file.
    """
    address = parse_url(url)
    sni = server_name or address.host
    context = trust.context()
    deadline = _Deadline(timeout_s)
    try:
        raw = _connect(address, deadline)
    except OSError as exc:
        return HttpsResult(url, sni, error=_one_line(exc), stage="connect")
    with raw:
        try:
            raw.settimeout(deadline.left())
            tls = context.wrap_socket(raw, server_hostname=sni)
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or exc.reason or "certificate verification failed"
            return HttpsResult(
                url,
                sni,
                error=f"TLS handshake with {address.authority}: certificate not trusted: {reason}",
                stage="tls",
                untrusted=True,
            )
        except OSError as exc:  # ssl.SSLError and TimeoutError are OSErrors
            return HttpsResult(
                url,
                sni,
                error=f"TLS handshake with {address.authority} failed: {_one_line(exc, deadline)}",
                stage="tls",
            )
        with tls:
            leaf = tls.getpeercert(binary_form=True)
            try:
                status, answer_headers, body = _exchange(
                    tls, sni, address, method, headers or {}, deadline, max_body
                )
            except (OSError, http.client.HTTPException) as exc:
                return HttpsResult(
                    url,
                    sni,
                    leaf_der=leaf,
                    error=f"HTTP request failed: {_http_error(exc, deadline)}",
                    stage="http",
                )
    return HttpsResult(url, sni, leaf, status, body, headers=answer_headers)


# -- name resolution and TCP ---------------------------------------------------------------
def _connect(address: Address, deadline: _Deadline) -> socket.socket:
    """A connected TCP socket to the first address of `address.host` that answers."""
    infos = _resolve(address.host, address.port, deadline)
    problems: list[str] = []
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        # One small request right after the TLS Finished message: with Nagle's algorithm
        # it waits for the server's delayed ACK, 40 ms on Linux (as urllib3 does, off).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.settimeout(deadline.left())
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            problems.append(_one_line(exc))
            if isinstance(exc, TimeoutError) or deadline.at <= time.monotonic():
                break
            continue
        return sock
    detail = "; ".join(dict.fromkeys(problems)) or "no address"
    raise OSError(f"connect to {address.authority} failed: {detail}")


def _resolve(host: str, port: int, deadline: _Deadline) -> list[Any]:
    """getaddrinfo with the deadline: it has no timeout of its own, so a name (not an
    address literal) is resolved in a daemon thread that we stop waiting for."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    found: list[Any] = []
    failure: list[OSError] = []

    def lookup() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            failure.append(exc)

    worker = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(deadline.left())
    if worker.is_alive():
        raise OSError(f"cannot resolve {host}: no answer within {seconds(deadline.timeout_s)} s")
    if failure:
        reason = getattr(failure[0], "strerror", None) or _one_line(failure[0])
        raise OSError(f"cannot resolve {host}: {reason}")
    return found


# -- HTTP over the TLS socket ----------------------------------------------------------------
class _DeadlineReader(io.RawIOBase):
    """Reads from the TLS socket, each read bounded by what is left of the deadline."""

    def __init__(self, tls: ssl.SSLSocket, deadline: _Deadline) -> None:
        super().__init__()
        self._tls = tls
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._tls.settimeout(self._deadline.left())
        try:
            return self._tls.recv_into(buffer)
        except ssl.SSLZeroReturnError:
            return 0


class _DeadlineSocket:
    """The part of a socket `http.client` uses, over our TLS socket and deadline."""

    def __init__(self, tls: ssl.SSLSocket, deadline: _Deadline) -> None:
        self._tls = tls
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._tls.settimeout(self._deadline.left())
        self._tls.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        if mode != "rb":
            raise ValueError(f"mode {mode!r} not supported")
        return io.BufferedReader(_DeadlineReader(self._tls, self._deadline))

    def close(self) -> None:
        """The TLS socket is closed by `fetch`, which opened it."""


class _Connection(http.client.HTTPConnection):
    default_port = 443  # so that `Host` names the port only when it is not 443

    def __init__(self, sock: _DeadlineSocket, host: str, port: int) -> None:
        super().__init__(host, port)
        self.sock = sock

    def connect(self) -> None:  # pragma: no cover - connected in __init__, never reconnects
        raise http.client.NotConnected("the connection is single-use")


def _exchange(
    tls: ssl.SSLSocket,
    host: str,
    address: Address,
    method: str,
    headers: Mapping[str, str],
    deadline: _Deadline,
    max_body: int,
) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    connection = _Connection(_DeadlineSocket(tls, deadline), host, address.port)
    connection.putrequest(method, address.target, skip_accept_encoding=True)
    sent = {name.lower() for name in headers}
    defaults = {"user-agent": "phoenix-cert", "accept": "*/*", "connection": "close"}
    for name, value in {**{k: v for k, v in defaults.items() if k not in sent}, **headers}.items():
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    try:
        body = response.read(max_body) if method != "HEAD" else b""
    except http.client.IncompleteRead as exc:
        raise http.client.HTTPException(
            f"the answer was cut short after {len(exc.partial)} bytes of body"
        ) from None
    finally:
        response.close()
    return response.status, tuple(response.getheaders()), body


def _http_error(exc: BaseException, deadline: _Deadline) -> str:
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, http.client.BadStatusLine):
        line = str(exc.args[0] if exc.args else "")
        return f"not an HTTP response: {line.strip()[:80]!r}"
    return _one_line(exc, deadline) or type(exc).__name__


def _one_line(exc: BaseException, deadline: _Deadline | None = None) -> str:
    if isinstance(exc, TimeoutError) and deadline is not None:
        return f"no answer within {seconds(deadline.timeout_s)} s"
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    return " ".join(str(exc).split())[:300]
