"""One `verify` run: read the inputs, run the three groups of checks, build the report.

The only module of `verify` with side effects besides `live`: it reads the manifest,
stack files and certificates, connects to Docker, and records URL results in the state
directory (best effort: verify never fails because of the state directory).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from phoenix_certbot.certs import CertificateMaterial, load_material
from phoenix_certbot.compose import load_compose
from phoenix_certbot.compose.engine import engine_finding, engine_verdict
from phoenix_certbot.errors import (
    CertificateError,
    ComposeError,
    DockerUnavailable,
    ManifestError,
    PhoenixError,
)
from phoenix_certbot.findings import Finding, Severity
from phoenix_certbot.manifest import load as manifest_load
from phoenix_certbot.manifest.model import Manifest, PortainerSettings
from phoenix_certbot.net.probe import ProbeResult
from phoenix_certbot.readiness.observe import Budget
from phoenix_certbot.rotation.journal import Journal
from phoenix_certbot.verify import files, intents, live, views
from phoenix_certbot.verify.judge import ProbeTarget
from phoenix_certbot.verify.model import (
    LIVE_GROUPS,
    MANIFEST_LIVE_GROUPS,
    Checked,
    Group,
    VerifyReport,
    skipped,
)
from phoenix_certbot.verify.stack_names import stale_object_names

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
STATE_LOCK_TIMEOUT_S = 2.0

Connect = Callable[[float], "views.DockerReader"]
_ORDER = {"compose": 0, "manifest": 1, "cert": 2}  # then live (and anything else)


@dataclass(frozen=True)
class VerifyOptions:
    manifest_path: str | None = None
    compose_files: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    stack: str | None = None
    offline: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    warn_days: int = files.DEFAULT_WARN_DAYS
    error_days: int = files.DEFAULT_ERROR_DAYS
    record_state: bool = True
    portainer: PortainerSettings = field(default_factory=PortainerSettings)  # CLI overrides
    swarm_checks: bool = True


def _connect(timeout_s: float) -> views.DockerReader:
    from phoenix_certbot.swarm.client import SwarmClient

    return SwarmClient.connect(timeout_s=max(1.0, timeout_s))


def _probe_until(
    url: str, server_name: str | None, expected: str | None, timeout_s: float
) -> tuple[ProbeResult, int]:
    from phoenix_certbot.net.probe import probe_until

    return probe_until(url, server_name, expected, timeout_s)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _quiet(_: str) -> None:
    return None


@dataclass
class _Run:
    """Accumulates findings, counts and skipped groups while the groups run."""

    options: VerifyOptions
    findings: list[Finding]
    skipped: dict[Group, str]
    counts: dict[str, int]
    docker_unreachable: bool = False

    def report(self) -> VerifyReport:
        checked = Checked(
            compose_files=self.counts.get("compose_files", 0),
            certificates=self.counts.get("certificates", 0),
            services=self.counts.get("services", 0),
            urls=self.counts.get("urls", 0),
            nodes=self.counts.get("nodes", 0),
            agents=self.counts.get("agents", 0),
            swarm_nodes=self.counts.get("swarm_nodes", 0),
            skipped=dict(self.skipped),
        )
        # Files first (compose, manifest, certificates), then live; in-group order kept.
        ordered = sorted(self.findings, key=lambda f: _ORDER.get(f.id.split(".", 1)[0], 3))
        return VerifyReport(tuple(ordered), checked, self.docker_unreachable)

    def unreachable(self, exc: DockerUnavailable, groups: Sequence[Group]) -> None:
        self.docker_unreachable = True
        self.findings.append(
            Finding(
                "live.docker-unreachable",
                Severity.ERROR,
                str(exc),
                "run verify on a swarm manager (or set DOCKER_HOST), or pass --offline for "
                "the file checks only",
            )
        )
        self.skipped.update(skipped(groups, "Docker unreachable"))


def run_verify(
    options: VerifyOptions,
    *,
    environ: Mapping[str, str] | None = None,
    connect: Connect = _connect,
    prober: live.Prober = _probe_until,
    report: live.Reporter = _quiet,
    now: live.Clock = _utcnow,
    observers: views.Observers = views.REAL,
) -> VerifyReport:
    run = _Run(options, [], {}, {})
    manifest = _manifest(run)
    portainer = views.merged_portainer(options.portainer, manifest)
    if not options.offline:
        views.check_portainer_input(portainer)
    materials = _certificates(run, manifest, now())
    if manifest is not None:  # local state: read (never resolved), offline too
        journal = Journal(manifest.settings.state_dir)
        run.findings.extend(intents.open_intent_findings(journal.peek(), now()))
    _compose(run, manifest, materials, os.environ if environ is None else environ)
    if options.offline:
        run.skipped.update(skipped(LIVE_GROUPS, "--offline"))
        return run.report()
    budget = Budget.starting_now(options.timeout_s)
    binds = manifest is not None and any(entry.services for entry in manifest.certificates)
    docker = _docker(run, connect, binds)
    # The views run beside the manifest's live checks, so that verify's time stays
    # within --timeout (plus a little) whatever each of them meets.
    with ThreadPoolExecutor(max_workers=2) as side:
        swarm_view = docker if options.swarm_checks else None
        started = views.start(side, portainer, swarm_view, budget, observers)
        if manifest is None:
            run.skipped.update(skipped(MANIFEST_LIVE_GROUPS, "no usable manifest"))
        else:
            _live(run, manifest, materials, docker if binds else None, prober, report, now)
        outcomes = [views.portainer_outcome(started.portainer)]
        if started.swarm is not None:
            outcomes.append(views.swarm_outcome(started.swarm))
        elif not options.swarm_checks:
            run.skipped[Group.SWARM] = "--no-swarm-checks"
    for outcome in outcomes:
        run.findings.extend(outcome.findings)
        run.counts.update(outcome.counts)
        if outcome.skipped:
            run.skipped[outcome.group] = outcome.skipped
    return run.report()


def _docker(run: _Run, connect: Connect, binds: bool) -> views.DockerReader | None:
    """Docker, when the manifest's services or the swarm view need it. Unreachable: exit 3
    when the manifest binds services; else only the swarm view is skipped."""
    if not binds:
        run.skipped.update(skipped((Group.SERVICES, Group.NODES), "no service in the manifest"))
        if not run.options.swarm_checks:
            return None
    try:
        return connect(run.options.timeout_s)
    except DockerUnavailable as exc:
        if binds:
            run.unreachable(exc, (Group.SERVICES, Group.NODES, Group.SWARM))
        else:
            run.skipped[Group.SWARM] = f"Docker unreachable ({exc})"
        return None


def _manifest(run: _Run) -> Manifest | None:
    try:
        manifest = manifest_load.load(manifest_load.locate(run.options.manifest_path))
    except ManifestError as exc:
        run.findings.append(files.manifest_error_finding(exc))
        return None
    run.findings.extend(files.manifest_findings(manifest))
    return manifest


def _compose(
    run: _Run,
    manifest: Manifest | None,
    materials: Mapping[str, CertificateMaterial],
    environ: Mapping[str, str],
) -> None:
    paths = run.options.compose_files
    if not paths:
        run.skipped[Group.COMPOSE] = "no --compose file given"
        return
    run.counts["compose_files"] = len(paths)
    try:
        stack = load_compose(paths, env_files=run.options.env_files, environ=environ)
    except ComposeError as exc:
        run.findings.append(files.compose_error_finding(exc))
        return
    run.findings.extend(files.compose_findings([stack], manifest, run.options.stack))
    verdict = engine_verdict(paths, env_files=run.options.env_files, environ=environ)
    if verdict is not None and not verdict.accepted:
        run.findings.append(engine_finding(paths, verdict))
    if manifest is not None:
        run.findings.extend(stale_object_names([stack], manifest, run.options.stack, materials))


def _certificates(
    run: _Run, manifest: Manifest | None, now: dt.datetime
) -> dict[str, CertificateMaterial]:
    if manifest is None:
        run.skipped[Group.CERTIFICATES] = "no usable manifest"
        return {}
    materials: dict[str, CertificateMaterial] = {}
    for entry in manifest.certificates:
        try:
            material = load_material(entry)
        except CertificateError as exc:
            loaded = files.LoadedCertificate(entry, error=exc)
        else:
            loaded = files.LoadedCertificate(entry, material=material)
            materials[entry.name] = material
        run.findings.extend(
            files.certificate_findings(loaded, now, run.options.warn_days, run.options.error_days)
        )
    run.counts["certificates"] = len(manifest.certificates)
    return materials


def _live(
    run: _Run,
    manifest: Manifest,
    materials: Mapping[str, CertificateMaterial],
    docker: live.SwarmReader | None,
    prober: live.Prober,
    report: live.Reporter,
    now: live.Clock,
) -> None:
    """The manifest's services (with `docker`), its verify URLs and host-mode nodes."""
    timeout = run.options.timeout_s
    node_targets: list[ProbeTarget] = []
    if docker is not None:
        try:
            node_targets = _swarm_checks(run, manifest, materials, docker, now)
        except DockerUnavailable as exc:
            run.unreachable(exc, (Group.SERVICES, Group.NODES))
        except PhoenixError as exc:  # an API error while reading the swarm
            run.findings.append(live.docker_error(str(exc)))
    url_targets = live.url_targets(manifest, materials)
    probed = live.probe_targets([*url_targets, *node_targets], prober, timeout, report, now)
    for result in probed:
        run.findings.extend(result.findings)
    run.counts["urls"] = len(url_targets)
    run.counts["nodes"] = len({t.node for t in node_targets})
    if run.options.record_state:
        _record(manifest, materials, [p for p in probed if p.target.node is None])


def _swarm_checks(
    run: _Run,
    manifest: Manifest,
    materials: Mapping[str, CertificateMaterial],
    swarm: live.SwarmReader,
    now: live.Clock,
) -> list[ProbeTarget]:
    checked = live.check_services(manifest, materials, swarm, now)
    run.findings.extend(checked.findings)
    run.counts["services"] = checked.checked
    host_mode = [d for d in checked.deployed.values() if d.service.published_host_ports]
    if not host_mode:
        return []
    targets, findings = live.node_targets(manifest, materials, checked.deployed, swarm.nodes())
    run.findings.extend(findings)
    return targets


def _record(
    manifest: Manifest,
    materials: Mapping[str, CertificateMaterial],
    probed: Sequence[live.Probed],
) -> None:
    """Remember each certificate's URL results for `phoenix-cert status`, if we may."""
    if not probed:
        return
    directory = Path(manifest.settings.state_dir)
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        log.debug("state directory %s not writable; verification not recorded", directory)
        return
    from phoenix_certbot.rotation.state import StateStore

    results: dict[str, dict[str, bool]] = {}
    for done in probed:
        results.setdefault(done.target.cert, {})[done.target.url] = done.ok
    store = StateStore(directory)
    try:
        with store.locked(STATE_LOCK_TIMEOUT_S):
            for cert, urls in results.items():
                material = materials.get(cert)
                store.record_verification(
                    cert, urls, material.info.sha256 if material is not None else None
                )
    except (PhoenixError, OSError) as exc:
        log.warning("verification not recorded in %s: %s", directory, exc)
