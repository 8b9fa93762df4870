"""Live checks of `verify`: gather what Docker and the network say, judge it in `judge`.

Takes a swarm reader (the `SwarmClient` methods we need, so tests may pass a fake) and a
prober (`net.probe.probe_until`'s signature). Raises `DockerUnavailable` when Docker goes
away in the middle; `verify.run` turns that into exit 3.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from phoenix_certbot.certs import CertificateMaterial
from phoenix_certbot.errors import DockerUnavailable, PhoenixError
from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.manifest.model import CertificateEntry, Manifest, Source
from phoenix_certbot.net.probe import ProbeResult
from phoenix_certbot.rotation.plan import server_name_of
from phoenix_certbot.swarm.model import NodeInfo, ServiceState, SwarmSnapshot, TaskState
from phoenix_certbot.verify.judge import (
    ProbeTarget,
    judge_convergence,
    judge_mounts,
    judge_probe,
    service_missing,
)

log = logging.getLogger(__name__)

MAX_PARALLEL_PROBES = 8
_UNKNOWN_ADDRESSES = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - compared, not bound

Prober = Callable[[str, str | None, str | None, float], tuple[ProbeResult, int]]
Reporter = Callable[[str], None]
Clock = Callable[[], dt.datetime]


class SwarmReader(Protocol):
    def snapshot(self) -> SwarmSnapshot: ...

    def tasks(self, service_id: str) -> tuple[TaskState, ...]: ...

    def nodes(self) -> tuple[NodeInfo, ...]: ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class Deployed:
    """A manifest service as found in the swarm, with its tasks."""

    service: ServiceState
    tasks: tuple[TaskState, ...]


@dataclass(frozen=True)
class ServiceCheck:
    findings: tuple[Finding, ...]
    checked: int
    deployed: Mapping[str, Deployed] = field(default_factory=dict)


def _services_of(manifest: Manifest) -> dict[str, list[tuple[CertificateEntry, int]]]:
    """Service name -> the (entry, binding index) pairs that bind it, in manifest order."""
    found: dict[str, list[tuple[CertificateEntry, int]]] = {}
    for entry in manifest.certificates:
        for index, binding in enumerate(entry.services):
            found.setdefault(binding.service, []).append((entry, index))
    return found


def _payload_sha256(material: CertificateMaterial) -> dict[Source, str]:
    return {
        s: material.payload_sha256(s) for s in Source if s is not Source.CHAIN or material.chain_pem
    }


def docker_error(message: str, service: str | None = None) -> Finding:
    return Finding(
        "live.docker-error",
        Severity.ERROR,
        message,
        "run verify again; if it persists, check the Docker daemon's log",
        service=service,
    )


def check_services(
    manifest: Manifest,
    materials: Mapping[str, CertificateMaterial],
    swarm: SwarmReader,
    now: Clock = _utcnow,
) -> ServiceCheck:
    """Each manifest service exists, has converged, and mounts the versions on disk."""
    snapshot = swarm.snapshot()
    findings: list[Finding] = []
    deployed: dict[str, Deployed] = {}
    services = _services_of(manifest)
    for name, bindings in services.items():
        certs = list(dict.fromkeys(entry.name for entry, _ in bindings))
        service = snapshot.service(name)
        if service is None:
            findings.append(service_missing(name, certs))
            continue
        try:
            tasks = swarm.tasks(service.id)
        except DockerUnavailable:
            raise
        except PhoenixError as exc:  # removed between the two calls, say
            findings.append(docker_error(str(exc), name))
            continue
        deployed[name] = Deployed(service, tasks)
        findings.extend(judge_convergence(service, tasks, certs, now()))
        for entry, index in bindings:
            material = materials.get(entry.name)
            if material is not None:
                findings.extend(
                    judge_mounts(
                        entry.name,
                        entry.services[index],
                        service,
                        snapshot,
                        _payload_sha256(material),
                    )
                )
    return ServiceCheck(tuple(findings), len(services), deployed)


def _expected(materials: Mapping[str, CertificateMaterial], cert: str) -> str | None:
    material = materials.get(cert)
    return material.info.sha256 if material is not None else None


def url_targets(
    manifest: Manifest, materials: Mapping[str, CertificateMaterial]
) -> list[ProbeTarget]:
    """Every verify URL, expecting the leaf on disk (None when it could not be read)."""
    targets: list[ProbeTarget] = []
    for entry in manifest.certificates:
        service = entry.services[0].service if len(entry.services) == 1 else None
        for verify in entry.verify:
            targets.append(
                ProbeTarget(
                    cert=entry.name,
                    url=verify.url,
                    server_name=server_name_of(verify.url, verify.server_name),
                    expected_sha256=_expected(materials, entry.name),
                    service=service,
                )
            )
    return targets


def _port(url: str) -> int | None:
    try:
        parts = urlsplit(url)
        return parts.port or (443 if parts.scheme == "https" else None)
    except ValueError:
        return None


def node_targets(
    manifest: Manifest,
    materials: Mapping[str, CertificateMaterial],
    deployed: Mapping[str, Deployed],
    nodes: Sequence[NodeInfo],
) -> tuple[list[ProbeTarget], list[Finding]]:
    """For host-mode ports that a verify URL names: one handshake per node running a task.

    Only ports a verify URL names are probed: a service may publish other ports that do
    not speak TLS at all (Portainer's edge tunnel on 8000).
    """
    by_id = {node.id: node for node in nodes}
    targets: dict[tuple[str, str, int], ProbeTarget] = {}
    findings: list[Finding] = []
    services = _services_of(manifest)
    for name, found in deployed.items():
        host_ports = set(found.service.published_host_ports)
        running = sorted({t.node_id for t in found.tasks if _running(t)})
        for entry, _ in services.get(name, ()):
            for verify in entry.verify:
                port = _port(verify.url)
                if port is None or port not in host_ports:
                    continue
                path = urlsplit(verify.url).path or "/"
                for node_id in running:
                    node = by_id.get(node_id)
                    address = node.address if node else ""
                    if address in _UNKNOWN_ADDRESSES:
                        findings.append(_no_address(name, entry.name, node_id, address))
                        continue
                    host = f"[{address}]" if ":" in address else address
                    targets.setdefault(
                        (entry.name, node_id, port),
                        ProbeTarget(
                            cert=entry.name,
                            url=f"https://{host}:{port}{path}",
                            server_name=server_name_of(verify.url, verify.server_name),
                            expected_sha256=_expected(materials, entry.name),
                            service=name,
                            node=node_id[:12],
                        ),
                    )
    return list(targets.values()), list(dict.fromkeys(findings))


def _running(task: TaskState) -> bool:
    return task.desired_state == "running" and task.state == "running"


def _no_address(service: str, cert: str, node_id: str, address: str) -> Finding:
    return Finding(
        "live.node-address-unknown",
        Severity.WARNING,
        f"node {node_id[:12]} runs a task of {service} but reports address "
        f"{address or '(none)'}, so its host-mode port was not probed",
        "join the node with --advertise-addr set to an address this host can reach",
        service=service,
        certificate=cert,
    )


@dataclass(frozen=True)
class Probed:
    target: ProbeTarget
    result: ProbeResult
    attempts: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)


def probe_targets(
    targets: Sequence[ProbeTarget],
    prober: Prober,
    timeout_s: float,
    report: Reporter = _quiet,
    now: Clock = _utcnow,
) -> list[Probed]:
    """Probe every target in parallel, each with bounded retries within `timeout_s`."""

    def one(target: ProbeTarget) -> Probed:
        report(f"probing {target.where} ...")
        try:
            result, attempts = prober(
                target.url, target.server_name, target.expected_sha256, timeout_s
            )
        except ValueError as exc:  # a URL the prober cannot use (no host, not https)
            result = ProbeResult(target.url, target.server_name, error=str(exc), stage="connect")
            attempts = 1
        findings = tuple(judge_probe(target, result, now(), attempts))
        done = Probed(target, result, attempts, findings)
        report(f"{target.where}: {'ok' if done.ok else 'FAILED'}{_attempts(attempts)}")
        return done

    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_PROBES, len(targets))) as pool:
        return list(pool.map(one, targets))


def _attempts(attempts: int) -> str:
    return f" after {attempts} attempts" if attempts > 1 else ""
