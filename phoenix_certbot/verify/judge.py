"""Judgement of live observations (pure): probe results, service convergence and drift.

`verify.live` gathers the observations (Docker, the network); these functions only compare
them with what the manifest and the certificates on disk expect, so unit tests can feed
them `ProbeResult`, `ServiceState` and `TaskState` values directly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509

from phoenix_certbot.certs import info_of
from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.manifest.model import ServiceBinding, Source, SwarmObjectRef
from phoenix_certbot.net.portainer import STATUS_PATH, portainer_status_problem
from phoenix_certbot.net.probe import ProbeResult
from phoenix_certbot.rotation.converge import Verdict, evaluate
from phoenix_certbot.rotation.mounts import MountState, MountVerdict, classify, file_attrs
from phoenix_certbot.swarm.model import (
    LABEL_CERT,
    ServiceState,
    SwarmSnapshot,
    TaskState,
    UpdateState,
)

LIVE_FINDING_IDS = (
    "live.docker-unreachable",
    "live.docker-error",
    "live.service-missing",
    "live.not-converged",
    "live.converging",
    "live.mount-missing",
    "live.drift-attrs",
    "live.drift-behind",
    "live.drift-reverted",
    "live.drift-unrotated",
    "live.connect",
    "live.tls",
    "live.wrong-cert",
    "live.san",
    "live.expired",
    "live.http-status",
    "live.redirect",
    "live.portainer-json",
    "live.node-unreachable",
    "live.node-address-unknown",
)

_E, _W = Severity.ERROR, Severity.WARNING
_ROTATE = "run phoenix-cert rotate {cert}"


@dataclass(frozen=True)
class ProbeTarget:
    """One TLS endpoint to probe and what it must serve.

    `node` is set for the per-node handshake of a host-mode port; those check the handshake
    and the served leaf, not the HTTP answer.
    """

    cert: str
    url: str
    server_name: str
    expected_sha256: str | None  # the leaf on disk; None when it could not be read
    service: str | None = None
    node: str | None = None

    @property
    def host_port(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{parts.port or 443}"

    @property
    def where(self) -> str:
        return f"node {self.node} ({self.host_port})" if self.node else self.url


_TLS_FIX = (
    "make the service answer TLS on that port (for Portainer: --sslcert/--sslkey and "
    "target port 9443), and check its logs"
)


def _finding(
    finding_id: str, severity: Severity, message: str, fix: str, target: ProbeTarget
) -> Finding:
    return Finding(
        finding_id, severity, message, fix, service=target.service, certificate=target.cert
    )


def _after(attempts: int) -> str:
    return f" (after {attempts} attempts)" if attempts > 1 else ""


def judge_probe(
    target: ProbeTarget, result: ProbeResult, now: dt.datetime, attempts: int = 1
) -> list[Finding]:
    """Findings for one probe result: empty when `target` serves what it must."""
    t = target
    if result.stage in {"connect", "tls"} or (result.error and result.leaf_der is None):
        return [_unreachable(t, result, attempts)]
    if result.leaf_der is None:
        return [_finding("live.tls", _E, f"{t.where} presented no certificate", _TLS_FIX, t)]
    try:
        leaf = x509.load_der_x509_certificate(result.leaf_der)
    except ValueError:
        return [
            _finding("live.tls", _E, f"{t.where} served an unparsable certificate", _TLS_FIX, t)
        ]
    found = _judge_leaf(t, leaf, now, attempts)
    if t.node is None:
        found.extend(_judge_http(t, result, attempts))
    return found


def _unreachable(t: ProbeTarget, result: ProbeResult, attempts: int) -> Finding:
    error = (result.error or "no answer") + _after(attempts)
    if t.node is not None:
        return _finding(
            "live.node-unreachable",
            _E,
            f"{t.where}: {error}",
            f"check that the task on node {t.node} publishes {t.host_port} in host mode and "
            "that nothing blocks it from here",
            t,
        )
    if result.stage == "connect":
        return _finding(
            "live.connect",
            _E,
            f"{t.url}: {error}",
            f"publish the port at service level (ports: with mode host or ingress, not under "
            f"deploy) and make sure a task runs behind {t.host_port}; "
            "`phoenix-cert verify --compose FILE` lints the layout",
            t,
        )
    return _finding("live.tls", _E, f"{t.url}: {error}", _TLS_FIX, t)


def _judge_leaf(
    t: ProbeTarget, leaf: x509.Certificate, now: dt.datetime, attempts: int
) -> list[Finding]:
    info = info_of(leaf)
    found: list[Finding] = []
    if t.expected_sha256 is not None and info.sha256 != t.expected_sha256:
        found.append(
            _finding(
                "live.wrong-cert",
                _E,
                f"{t.where} serves leaf {info.sha256[:16]} ({info.subject}, not after "
                f"{_when(info.not_after)}), not the certificate on disk "
                f"({t.expected_sha256[:16]}){_after(attempts)}",
                f"{_ROTATE.format(cert=t.cert)}; if the service already mounts the new "
                "version, make the server read the mounted file and restart it",
                t,
            )
        )
    if not info.covers(t.server_name):
        names = ", ".join([*info.dns_names, *info.ip_addresses]) or "no SANs"
        found.append(
            _finding(
                "live.san",
                _E,
                f"{t.where}: the served certificate does not cover {t.server_name} "
                f"(it covers: {names})",
                f"re-issue the certificate with {t.server_name} in its SANs, or set the verify "
                "entry's server_name to a name it covers",
                t,
            )
        )
    if now > info.not_after or now < info.not_before:
        what = (
            f"expired on {_when(info.not_after)}"
            if now > info.not_after
            else f"is not valid before {_when(info.not_before)}"
        )
        found.append(
            _finding(
                "live.expired",
                _E,
                f"{t.where}: the served certificate {what}",
                f"renew and roll it out: certbot renew --cert-name {t.cert}, then "
                f"{_ROTATE.format(cert=t.cert)}",
                t,
            )
        )
    return found


def _judge_http(t: ProbeTarget, result: ProbeResult, attempts: int) -> list[Finding]:
    if result.stage == "http" or result.status is None:
        return [
            _finding(
                "live.http-status",
                _E,
                f"{t.url}: {result.error or 'no HTTP answer'}{_after(attempts)}",
                "TLS works but the application does not answer HTTP in time; check its logs",
                t,
            )
        ]
    status_path = urlsplit(t.url).path.rstrip("/").endswith(STATUS_PATH)
    if result.redirect:
        where = result.location or "(no Location header)"
        if status_path:
            return [
                _finding(
                    "live.portainer-json",
                    _E,
                    f"{t.url}: HTTP {result.status}, a redirect to {where}, not Portainer's "
                    "status API",
                    "point the verify URL at Portainer's own HTTPS port (9443), not a proxy "
                    "that redirects",
                    t,
                )
            ]
        return [
            _finding(
                "live.redirect",
                _W,
                f"{t.url}: HTTP {result.status}, a redirect to {where}; the certificate is "
                "served, but the page itself was not checked",
                "point the verify URL at the page it redirects to (for Portainer: "
                "/api/system/status)",
                t,
            )
        ]
    if not result.http_ok:
        return [
            _finding(
                "live.http-status",
                _E,
                f"{t.url}: HTTP status {result.status}, expected 2xx{_after(attempts)}",
                "check the URL path in the manifest's verify entry and the service's logs",
                t,
            )
        ]
    if status_path:
        problem = portainer_status_problem(result.body)
        if problem:
            return [
                _finding(
                    "live.portainer-json",
                    _E,
                    f"{t.url}: {problem}",
                    "point the verify URL at Portainer's HTTPS port, or check that Portainer "
                    "started (docker service logs)",
                    t,
                )
            ]
    return []


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- services ----------------------------------------------------------------------------
def service_missing(service: str, certs: Sequence[str]) -> Finding:
    return Finding(
        "live.service-missing",
        _E,
        f"service {service} (certificate {', '.join(certs)}) does not exist",
        "deploy the stack, or correct the manifest's service name (<stack>_<service>)",
        service=service,
        certificate=certs[0] if len(certs) == 1 else None,
    )


def judge_convergence(
    service: ServiceState, tasks: Sequence[TaskState], certs: Sequence[str], now: dt.datetime
) -> list[Finding]:
    """An error when swarm failed or the service's tasks do not run its current spec; a
    warning while an update runs or the tasks are within the monitor period."""
    verdict = evaluate(service, tasks, now)
    if verdict.verdict is Verdict.DONE:
        return []
    cert = certs[0] if len(certs) == 1 else None
    settling = verdict.verdict is Verdict.WAITING and (
        service.update_state is UpdateState.UPDATING or verdict.running >= verdict.wanted
    )
    if settling:
        return [
            Finding(
                "live.converging",
                _W,
                f"service {service.name} is still settling: {verdict.message}",
                "run verify again in a minute; `docker service ps` shows the tasks",
                service=service.name,
                certificate=cert,
            )
        ]
    return [
        Finding(
            "live.not-converged",
            _E,
            f"service {service.name} has not converged: {verdict.message}",
            f"see `docker service ps --no-trunc {service.name}` and the service's logs; "
            "a task that fails at start often means a certificate/key it cannot read",
            service=service.name,
            certificate=cert,
        )
    ]


def judge_mounts(
    cert: str,
    binding: ServiceBinding,
    service: ServiceState,
    snapshot: SwarmSnapshot,
    payload_sha256: Mapping[Source, str],
) -> list[Finding]:
    """Does the service mount, at each manifest target, the version of the disk's cert?
    `rotation.mounts.classify` decides, as it does for plan and status:

    - `live.drift-attrs`: the right version with another uid, gid or mode;
    - `live.drift-behind`: it mounts an older managed version;
    - `live.drift-reverted`: it mounts an object that is not one of our versions of the
      base while the managed version of the current certificate exists: a stack redeploy
      put it back;
    - `live.drift-unrotated`: not ours, and no version of the current certificate exists.
    """
    found: list[Finding] = []
    for ref in binding.objects:
        sha = payload_sha256.get(ref.source)
        if sha is None:
            continue
        verdict = classify(ref, sha, service, snapshot)
        finding = _judge_mount(cert, binding.service, ref, verdict)
        if finding is not None:
            found.append(finding)
    return found


def _judge_mount(
    cert: str, service_name: str, ref: SwarmObjectRef, verdict: MountVerdict
) -> Finding | None:
    kind = ref.kind.value
    rotate = _ROTATE.format(cert=cert)
    expected = verdict.expected or f"a version of {ref.name}"
    mount = verdict.mount
    if verdict.state is MountState.MISSING or mount is None:
        return Finding(
            "live.mount-missing",
            _E,
            f"service {service_name} mounts no {kind} at {ref.target} (expected {expected})",
            f"{rotate} (it adds the mount), and keep the {kind} in the stack file",
            service=service_name,
            certificate=cert,
        )
    have = f"service {service_name} mounts {kind} {mount.object_name} at {ref.target}"
    if verdict.state is MountState.WRONG_FILE_ATTRS:
        return Finding(
            "live.drift-attrs",
            _E,
            f"{have} as {file_attrs(mount.uid, mount.gid, mount.mode)}; the manifest says "
            f"{file_attrs(ref.uid, ref.gid, ref.mode)}",
            f"{rotate} (it sets the owner and mode), and give the stack file the same "
            "uid, gid and mode so that a redeploy keeps them",
            service=service_name,
            certificate=cert,
        )
    if verdict.state is MountState.BEHIND:
        other = verdict.mounted.label(LABEL_CERT) if verdict.mounted else None
        of = f" of certificate {other}" if other and other != cert else ""
        state = "exists" if verdict.wanted is not None else "is not deployed yet"
        return Finding(
            "live.drift-behind",
            _E,
            f"{have}, an older managed version{of}; the certificate on disk is {expected} "
            f"(which {state})",
            rotate,
            service=service_name,
            certificate=cert,
        )
    if verdict.state is MountState.FOREIGN:
        return Finding(
            "live.drift-reverted",
            _E,
            f"{have}, which is not one of phoenix-cert's versions of {ref.name}, although "
            f"{expected} (the certificate on disk) exists: a stack redeploy reverted the "
            "rotation",
            f"{rotate}; deploy the stack with the names from `phoenix-cert stack-env` so a "
            "redeploy keeps the rotated version",
            service=service_name,
            certificate=cert,
        )
    if verdict.state is MountState.UNROTATED:
        return Finding(
            "live.drift-unrotated",
            _E,
            f"{have}, which is not one of phoenix-cert's versions of {ref.name}, and no "
            f"version of the certificate on disk ({expected}) exists: it was never rotated",
            rotate,
            service=service_name,
            certificate=cert,
        )
    return None  # current (unknown cannot be: the content on disk is known here)
