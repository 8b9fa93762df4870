"""The benchmarks' Docker resources: created under one run prefix and label, removed after.

Every service, secret and config a benchmark creates is named `phxbench-<8 hex>-...` and,
when we create it ourselves, labelled `phoenix-certbot.bench=<prefix>`. phoenix-cert's own
versions are named after the manifest's base names, which start with the prefix too. The
cleanup removes what carries the label or the prefix, nothing else; it runs in `finally`,
so also on Ctrl-C (SIGINT is ignored while it runs; it is bounded in time).
"""

from __future__ import annotations

import hashlib
import secrets as token
import shlex
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import docker
import docker.errors
from docker.types import (
    ContainerSpec,
    EndpointSpec,
    SecretReference,
    ServiceMode,
    TaskTemplate,
    UpdateConfig,
)

from bench.common import REPO_ROOT, BenchError, Output, poll_until, sigint_ignored

BENCH_LABEL = "phoenix-certbot.bench"
STANDIN_PORT = 9443
CERT_TARGET = "portainer.sslcert"
KEY_TARGET = "portainer.sslkey"
SECOND_NS = 1_000_000_000
PARALLEL = 8  # bound on concurrent API calls while setting up and cleaning up
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class UpdatePolicy:
    """The UpdateConfig every benchmark service gets, ours and the baseline's alike.

    Defaults are Docker's own (monitor 5 s, failure_action pause, parallelism 1, delay 0)
    with `order: stop-first`, i.e. what the Portainer stack in manifests/ deploys.
    """

    monitor_s: float = 5.0
    failure_action: Literal["pause", "continue", "rollback"] = "pause"
    order: Literal["start-first", "stop-first"] = "stop-first"

    def describe(self) -> str:
        return (
            f"UpdateConfig parallelism=1 delay=0 order={self.order} "
            f"monitor={self.monitor_s:g}s failure_action={self.failure_action}"
        )

    def services(self) -> str:
        """How every benchmark service is made, for the report."""
        return (
            "services: stand-in image, init=True, host-mode publish, replicas 1, " + self.describe()
        )

    def api(self) -> UpdateConfig:
        return UpdateConfig(
            parallelism=1,
            delay=0,
            failure_action=self.failure_action,
            monitor=int(self.monitor_s * SECOND_NS),
            order=self.order,
        )


@dataclass(frozen=True)
class Mount:
    secret_id: str
    secret_name: str
    target: str
    mode: int = 0o444


def shell_swap(service: str, old_cert: str, new_cert: str, old_key: str, new_key: str) -> str:
    """The baselines' one `docker service update` per service: swap cert and key secrets."""
    q = shlex.quote
    return (
        "docker service update --detach=false"
        f" --secret-rm {q(old_cert)}"
        f" --secret-add source={q(new_cert)},target={CERT_TARGET},mode=0444"
        f" --secret-rm {q(old_key)}"
        f" --secret-add source={q(new_key)},target={KEY_TARGET},mode=0400"
        f" {q(service)} >/dev/null"
    )


def standin_image() -> str:
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "tests" / "harness" / "standin" / "build.sh")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.split():
        raise BenchError(f"cannot build the stand-in image: {result.stderr.strip()}")
    return result.stdout.split()[-1]


def served_sha256(port: int, server_name: str, timeout_s: float = 3.0) -> str | None:
    """SHA-256 of the leaf served on 127.0.0.1:port, or None (one bounded handshake)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # which certificate, not whether it is trusted
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock,
            context.wrap_socket(sock, server_hostname=server_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    return hashlib.sha256(der).hexdigest() if der else None


def parallel(fn: Callable[[T], R], items: Iterable[T], workers: int = PARALLEL) -> list[R]:
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


class BenchSwarm:
    """One benchmark's view of the swarm: create under the prefix, clean up by prefix."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.prefix = f"phxbench-{token.token_hex(4)}-"
        self._local = threading.local()
        self._clients: list[docker.DockerClient] = []
        self._lock = threading.Lock()
        self.service_ids: list[str] = []
        self.secret_ids: list[str] = []

    # -- clients (one per thread: requests sessions are not meant to be shared) ----------
    @property
    def api(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = docker.from_env(timeout=120)
            with self._lock:
                self._clients.append(client)
            self._local.client = client
        return client.api  # untyped SDK boundary, as in the tool's own adapter

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()

    def name(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    @property
    def labels(self) -> dict[str, str]:
        return {BENCH_LABEL: self.prefix}

    # -- creating -------------------------------------------------------------------------
    def create_secret(self, name: str, data: bytes, labels: dict[str, str] | None = None) -> str:
        if not name.startswith(self.prefix):
            raise BenchError(f"secret {name} is not under the run prefix {self.prefix}")
        ident = str(
            self.api.create_secret(name, data, labels={**self.labels, **(labels or {})})["ID"]
        )
        with self._lock:
            self.secret_ids.append(ident)
        return ident

    def create_service(
        self,
        suffix: str,
        image: str,
        policy: UpdatePolicy,
        mounts: Sequence[Mount],
        *,
        port: int | None = None,
        replicas: int = 1,
    ) -> str:
        """A stand-in service: init=True, host-mode publish of 9443 on `port` if given."""
        spec = ContainerSpec(
            image=image,
            init=True,
            secrets=[
                SecretReference(m.secret_id, m.secret_name, filename=m.target, mode=m.mode)
                for m in mounts
            ],
        )
        ports: Any = (
            [
                {
                    "Protocol": "tcp",
                    "PublishedPort": port,
                    "TargetPort": STANDIN_PORT,
                    "PublishMode": "host",
                }
            ]
            if port
            else []
        )
        result = self.api.create_service(
            TaskTemplate(container_spec=spec),
            name=self.name(suffix),
            labels=self.labels,
            mode=ServiceMode("replicated", replicas=replicas),
            update_config=policy.api(),
            endpoint_spec=EndpointSpec(ports=ports) if ports else None,
        )
        ident = str(result["ID"])
        with self._lock:
            self.service_ids.append(ident)
        return ident

    # -- reading --------------------------------------------------------------------------
    def tasks(self, service_id: str) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = self.api.tasks(filters={"service": service_id})
        return tasks

    def wait_running(self, service_ids: Sequence[str], timeout_s: float = 60.0) -> None:
        def all_running() -> bool:
            return all(
                any(
                    t["DesiredState"] == "running" and t["Status"]["State"] == "running"
                    for t in self.tasks(s)
                )
                for s in service_ids
            )

        poll_until(f"{len(service_ids)} service(s) running", all_running, timeout_s)

    def wait_served(
        self, port: int, server_name: str, sha256: str, timeout_s: float = 30.0
    ) -> None:
        poll_until(
            f"127.0.0.1:{port} serving {sha256[:12]}",
            lambda: served_sha256(port, server_name) == sha256,
            timeout_s,
        )

    def spec_version(self, service_id: str) -> int:
        return int(self.api.inspect_service(service_id)["Version"]["Index"])

    def engine_version(self) -> str:
        version = self.api.version()
        return f"Docker Engine {version.get('Version')} (API {version.get('ApiVersion')})"

    def count_secrets(self) -> int:
        return len(list(self.api.secrets()))

    # -- cleaning up ----------------------------------------------------------------------
    def _ours(self, listing: Iterable[dict[str, Any]]) -> list[str]:
        found = []
        for item in listing:
            spec = item.get("Spec") or {}
            labels = spec.get("Labels") or {}
            if (
                spec.get("Name", "").startswith(self.prefix)
                or labels.get(BENCH_LABEL) == self.prefix
            ):
                found.append(str(item["ID"]))
        return found

    def cleanup(self, timeout_s: float = 180.0) -> list[str]:
        """Remove every service, secret and config of this run. Returns the problems."""
        with sigint_ignored():
            return self._cleanup(timeout_s)

    def _cleanup(self, timeout_s: float) -> list[str]:
        deadline = time.monotonic() + timeout_s
        problems: list[str] = []
        try:
            services = set(self.service_ids) | set(self._ours(self.api.services()))
        except docker.errors.DockerException as exc:
            return [f"cannot list services: {exc}"]
        if services or self.secret_ids:
            self.out.note(f"cleaning up {self.prefix}* (Ctrl-C is ignored until done)")

        def remove_service(ident: str) -> None:
            try:
                self.api.remove_service(ident)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                problems.append(f"service {ident}: {exc}")

        parallel(remove_service, sorted(services))

        def containers_left() -> bool:
            for ident in services:
                label = f"com.docker.swarm.service.id={ident}"
                if self.api.containers(all=True, filters={"label": label}):
                    return False
            return True

        if services:
            try:
                poll_until(
                    "containers of removed services gone",
                    containers_left,
                    max(1.0, deadline - time.monotonic()),
                    0.2,
                )
            except BenchError as exc:
                problems.append(str(exc))

        for kind in ("config", "secret"):
            listing = self.api.secrets() if kind == "secret" else self.api.configs()
            objects = set(self._ours(listing))
            if kind == "secret":
                objects |= set(self.secret_ids)

            def remove(ident: str, kind: str = kind) -> None:
                # Thread-local client: look the remover up in this thread.
                remover = self.api.remove_secret if kind == "secret" else self.api.remove_config
                for _attempt in range(200):
                    try:
                        remover(ident)
                        return
                    except docker.errors.NotFound:
                        return
                    except docker.errors.APIError as exc:  # in use for a moment longer
                        if time.monotonic() > deadline:
                            problems.append(f"{kind} {ident}: {exc}")
                            return
                        time.sleep(0.2)
                problems.append(f"{kind} {ident}: still present after 200 attempts")

            parallel(remove, sorted(objects))
        self.service_ids.clear()
        self.secret_ids.clear()
        if problems:
            self.out.line(
                f"CLEANUP PROBLEMS ({len(problems)}): {'; '.join(problems[:5])}; find leftovers"
                f" with: docker service ls -f name={self.prefix};"
                f" docker secret ls -f name={self.prefix}"
            )
        return problems


def per_size(out: Output, sizes: Sequence[int], measure: Callable[[BenchSwarm, int], T]) -> list[T]:
    """`measure(swarm, k)` for each size, on one run prefix, cleaned up after each size."""
    results: list[T] = []
    swarm = BenchSwarm(out)
    try:
        for k in sizes:
            try:
                results.append(measure(swarm, k))
            finally:
                swarm.cleanup()
    finally:
        swarm.close()
    return results
