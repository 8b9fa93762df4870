"""Watch a service while something is done to it: a TLS prober and a task-timeline reader.

`Prober` is a background thread that opens one TCP connection and one TLS handshake (with
SNI) to a URL at a fixed rate (20 Hz by default), every attempt bounded in time, and records
an `Observation` for each: the served leaf's SHA-256, or refused / timeout / TLS error /
other. `TaskWatcher` is a background thread that reads the service's tasks from Docker
(5 Hz) and keeps, for each task, when Docker says it was created, entered and left the
running state. `ServiceWatch` runs both and judges the result with
`tests.support.invariant.check`, whose module docstring defines the invariant.

Both threads stop when the `with` block ends, and on their own after `limit_s`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from tests.support.invariant import (
    Kind,
    Observation,
    TaskSpan,
    Verdict,
    Window,
    check,
    serving_windows,
)

RATE_HZ = 20.0
PROBE_TIMEOUT_S = 1.0
TASK_POLL_S = 0.2
LIMIT_S = 900.0
ENGINE_API = "v1.41"  # Engine 20.10's, which every engine of the tests speaks
# Docker's task states past "running": the task no longer runs (or never will).
ENDED_STATES = frozenset({"complete", "shutdown", "failed", "rejected", "orphaned", "remove"})


def _no_verify() -> ssl.SSLContext:
    # Which leaf is served is the question, not whether it is trusted.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def probe_once(
    host: str, port: int, server_name: str | None, timeout_s: float, context: ssl.SSLContext
) -> Observation:
    """One connection and one handshake, within `timeout_s` for each of the two steps."""
    at, started = time.time(), time.monotonic()

    def seen(kind: Kind, leaf: str | None = None, detail: str = "") -> Observation:
        return Observation(at, time.monotonic() - started, kind, leaf, detail)

    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except ConnectionRefusedError:
        return seen(Kind.REFUSED, detail="connection refused")
    except TimeoutError:
        return seen(Kind.TIMEOUT, detail="connect timed out")
    except OSError as exc:
        return seen(Kind.OTHER, detail=f"connect: {exc}")
    with sock:
        try:
            der = _handshake(sock, context, server_name, time.monotonic() + timeout_s)
        except TimeoutError:
            return seen(Kind.TIMEOUT, detail="handshake timed out")
        except (ssl.SSLError, ConnectionError) as exc:
            return seen(Kind.TLS, detail=f"handshake: {exc}")
        except OSError as exc:
            return seen(Kind.OTHER, detail=f"handshake: {exc}")
    if not der:
        return seen(Kind.TLS, detail="no certificate")
    return seen(Kind.LEAF, hashlib.sha256(der).hexdigest())


def _handshake(
    sock: socket.socket, context: ssl.SSLContext, server_name: str | None, deadline: float
) -> bytes | None:
    """The client handshake over memory buffers; returns the peer's DER leaf.

    Not `wrap_socket`: when a peer resets the connection at once (Docker's userland proxy
    with no task behind it), CPython's SSLSocket constructor can raise without closing the
    socket it took over, and the leak surfaces later as a ResourceWarning.
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    for _round in range(64):  # a handshake takes a few round trips
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        else:
            sock.sendall(outgoing.read())
            return tls.getpeercert(binary_form=True)
        pending = outgoing.read()
        if pending:
            sock.sendall(pending)
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(65536)
        if not data:
            raise ConnectionResetError("closed during the handshake")
        incoming.write(data)
    raise ssl.SSLError("no handshake after 64 rounds")


Looping = TypeVar("Looping", bound="_Loop")


class _Loop:
    """A daemon thread calling `step` every `period_s` until stopped or `limit_s` is up."""

    def __init__(self, name: str, period_s: float, limit_s: float) -> None:
        self._period = period_s
        self._limit = limit_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def step(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._period + 10.0)

    def __enter__(self: Looping) -> Looping:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        ends = time.monotonic() + self._limit
        tick = time.monotonic()
        while not self._stop.is_set() and time.monotonic() < ends:
            self.step()
            # A fixed rate; a late step skips the ticks it missed instead of bunching up.
            tick = max(tick + self._period, time.monotonic())
            self._stop.wait(max(0.0, tick - time.monotonic()))


class Prober(_Loop):
    """`with Prober.for_url(url, sni) as prober:` ... `prober.trace()`."""

    def __init__(
        self,
        host: str,
        port: int,
        server_name: str | None,
        *,
        rate_hz: float = RATE_HZ,
        timeout_s: float = PROBE_TIMEOUT_S,
        limit_s: float = LIMIT_S,
    ) -> None:
        super().__init__(f"prober {host}:{port}", 1.0 / rate_hz, limit_s)
        self.host, self.port, self.server_name = host, port, server_name
        self._timeout = timeout_s
        self._context = _no_verify()
        self._trace: list[Observation] = []
        self._lock = threading.Lock()
        self._seen = threading.Condition(self._lock)

    @classmethod
    def for_url(cls, url: str, server_name: str | None = None, **kwargs: Any) -> Prober:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"not an https URL: {url}")
        return cls(parts.hostname, parts.port or 443, server_name or parts.hostname, **kwargs)

    def step(self) -> None:
        observation = probe_once(
            self.host, self.port, self.server_name, self._timeout, self._context
        )
        with self._seen:
            self._trace.append(observation)
            self._seen.notify_all()

    def trace(self) -> tuple[Observation, ...]:
        with self._lock:
            return tuple(self._trace)

    def wait_for(
        self, wanted: Callable[[Observation], bool], timeout_s: float, what: str = "a probe"
    ) -> Observation:
        """The first observation from now on that satisfies `wanted`; AssertionError if
        none does within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._seen:
            index = len(self._trace)
            while True:
                for observation in self._trace[index:]:
                    if wanted(observation):
                        return observation
                index = len(self._trace)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what}: not seen within {timeout_s:g} s")
                self._seen.wait(min(left, 1.0))


# -- the task timeline ------------------------------------------------------------------------
def docker_time(text: str) -> float:
    """Docker's RFC 3339 timestamp (nanoseconds, `Z`) as wall-clock seconds."""
    head, _, fraction = text.rstrip("Z").partition(".")
    when = dt.datetime.fromisoformat(head).replace(tzinfo=dt.timezone.utc)
    return when.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def _slot(task: Mapping[str, Any]) -> str:
    return str(task.get("Slot") or task.get("NodeID") or task["ID"])


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the engine's unix socket; a socket that fails to connect is closed here
    (the Docker SDK leaves it open, and filterwarnings=error fails the test on the leak)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def engine_get(docker_host: str, path: str, timeout_s: float = 5.0) -> Any:
    """GET `path` (e.g. /tasks?filters=...) from the engine at `docker_host` (unix://...)."""
    if not docker_host.startswith("unix://"):
        raise ValueError(f"not a unix socket: {docker_host}")
    connection = _UnixHTTPConnection(docker_host.removeprefix("unix://"), timeout_s)
    try:
        connection.request("GET", f"/{ENGINE_API}{path}")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise OSError(f"GET {path}: HTTP {response.status}: {body[:200]!r}")
    return json.loads(body)


class TaskWatcher(_Loop):
    """Reads the tasks of `service_id` from the engine at `docker_host` every 0.2 s.

    Docker keeps only the last few tasks of a slot and only a task's latest state, so the
    times a task entered and left the running state are taken from the polls that saw
    them (`Status.Timestamp` is the exact time of the state seen). A task never seen
    running gets no serving time: the check is then lenient for it, never strict. A poll
    that fails (the daemon stopped or frozen) is counted in `errors`.
    """

    def __init__(
        self,
        docker_host: str,
        service_id: str,
        *,
        poll_s: float = TASK_POLL_S,
        limit_s: float = LIMIT_S,
    ) -> None:
        super().__init__(f"tasks {service_id[:12]}", poll_s, limit_s)
        self.service_id = service_id
        self.docker_host = docker_host
        self._query = "/tasks?" + urlencode({"filters": json.dumps({"service": [service_id]})})
        self._spans: dict[str, TaskSpan] = {}
        self._lock = threading.Lock()
        self.errors = 0

    def step(self) -> None:
        try:
            tasks: list[dict[str, Any]] = engine_get(self.docker_host, self._query)
        except (OSError, ValueError, http.client.HTTPException):
            self.errors += 1
            return
        self.merge(tasks)

    def merge(self, tasks: Iterable[Mapping[str, Any]]) -> None:
        with self._lock:
            for task in tasks:
                ident = str(task["ID"])
                state = task["Status"]["State"]
                stamp = docker_time(task["Status"]["Timestamp"])
                known = self._spans.get(ident) or TaskSpan(
                    ident, _slot(task), docker_time(task["CreatedAt"]), None, None
                )
                running, ended = known.running, known.ended
                if state == "running" and running is None:
                    running = stamp
                if state in ENDED_STATES and ended is None:
                    ended = stamp
                self._spans[ident] = TaskSpan(ident, known.slot, known.created, running, ended)

    def spans(self) -> tuple[TaskSpan, ...]:
        with self._lock:
            return tuple(self._spans.values())

    def stop(self) -> None:
        super().stop()
        self.step()  # the last word: states reached since the last poll


class ServiceWatch:
    """A `Prober` on the service's URL and a `TaskWatcher` on its tasks, for one fault.

    `with ServiceWatch(url, sni, docker_host, service_id) as watch:` ... then
    `watch.verdict({old: "old", new: "new"})`.
    """

    def __init__(
        self,
        url: str,
        server_name: str | None,
        docker_host: str,
        service_id: str,
        *,
        rate_hz: float = RATE_HZ,
    ) -> None:
        self.prober = Prober.for_url(url, server_name, rate_hz=rate_hz)
        self.tasks = TaskWatcher(docker_host, service_id)
        self.outages: list[Window] = []  # outages the test caused itself
        self.daemon_stops: list[float] = []  # times the test stopped the node's daemon

    def __enter__(self) -> ServiceWatch:
        self.tasks.start()
        self.prober.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.prober.stop()
        self.tasks.stop()

    def verdict(self, valid: Mapping[str, str], allowed: Sequence[Window] = ()) -> Verdict:
        return check(
            self.prober.trace(),
            valid,
            serving_windows(self.tasks.spans(), daemon_stops=self.daemon_stops),
            [*self.outages, *allowed],
        )
