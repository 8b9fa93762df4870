"""Execute a rotation plan: create versions, update each service once, wait, verify, and
roll a service back by itself when it does not converge or does not serve the new leaf.

Invariant: a service is only ever switched between objects that exist, and objects are
removed only when no service's current or previous spec refers to them, so a crash at any
point leaves each service on the old or the new certificate.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from phoenix_certbot.certs import CertificateMaterial
from phoenix_certbot.errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, OperationFailed, PhoenixError
from phoenix_certbot.fsutil import write_atomic
from phoenix_certbot.manifest.model import ObjectKind
from phoenix_certbot.net.probe import ProbeResult, probe, probe_until
from phoenix_certbot.rotation.converge import Convergence, Verdict, evaluate
from phoenix_certbot.rotation.plan import Check, Plan, ServiceChange
from phoenix_certbot.swarm import model as sm
from phoenix_certbot.swarm.client import SwarmClient, TemplateToken

log = logging.getLogger(__name__)
# Updates are independent and the daemon does the work; measured in bench/: 8 services in
# one wave took 10 s where two waves of 4 took 16 s.
MAX_PARALLEL_UPDATES = 8
POLL_S = 0.5


@dataclass(frozen=True)
class ServiceOutcome:
    service: str
    certs: tuple[str, ...]
    result: str  # "updated" | "rolled-back" | "rollback-failed" | "failed"
    detail: str = ""


@dataclass(frozen=True)
class CheckOutcome:
    check: Check
    ok: bool
    served_sha256: str | None
    status: int | None
    error: str | None
    attempts: int


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    created: tuple[str, ...] = ()
    services: tuple[ServiceOutcome, ...] = ()
    checks: tuple[CheckOutcome, ...] = ()
    pruned: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # certificates left out because they failed their checks

    @property
    def exit_code(self) -> int:
        if any(s.result in {"rollback-failed", "failed"} for s in self.services):
            return EXIT_PARTIAL
        if (
            self.errors
            or self.plan.problems
            or any(s.result == "rolled-back" for s in self.services)
        ):
            return EXIT_FAILED
        if any(not c.ok for c in self.checks):
            return EXIT_FAILED
        return EXIT_OK

    def failed_certs(self) -> set[str]:
        bad = {c.check.cert for c in self.checks if not c.ok} | set(self.skipped)
        for s in self.services:
            if s.result != "updated":
                bad.update(s.certs)
        return bad


Reporter = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class Engine:
    swarm: SwarmClient
    update_timeout_s: float = 180.0
    verify_timeout_s: float = 60.0
    report: Reporter = _quiet
    _written: dict[str, list[tuple[Path, bytes | None]]] = field(default_factory=dict)
    # Every object a mount may point at, read once after the versions are created.
    _objects: dict[tuple[ObjectKind, str], sm.DeployedObject] = field(default_factory=dict)

    # -- objects -----------------------------------------------------------------------
    def create_objects(
        self, plan: Plan, materials: Mapping[str, CertificateMaterial]
    ) -> tuple[str, ...]:
        created: list[str] = []
        for new in plan.creates:
            payload = materials[new.cert].payload(new.source)
            labels = {
                sm.LABEL_MANAGED: "true",
                sm.LABEL_CERT: new.cert,
                sm.LABEL_BASE: new.base,
                sm.LABEL_SOURCE: new.source.value,
                sm.LABEL_SHA256: new.sha256,
                sm.LABEL_LEAF_SHA256: new.leaf_sha256,
                sm.LABEL_NOT_AFTER: new.not_after.astimezone(dt.timezone.utc)
                .isoformat()
                .replace("+00:00", "Z"),
            }
            self.swarm.create_object(new.kind, new.name, payload, labels)
            created.append(new.name)
            self.report(f"created {new.kind.value} {new.name}")
        return tuple(created)

    # -- one service -------------------------------------------------------------------
    def _mounts(self, change: ServiceChange) -> list[sm.MountRef]:
        mounts = []
        for m in change.mounts:
            obj = self._objects.get((m.kind, m.new_name))
            if obj is None:
                raise OperationFailed(
                    f"{m.kind.value} {m.new_name} vanished before the update of {change.service}"
                )
            mounts.append(
                sm.MountRef(
                    kind=m.kind,
                    object_id=obj.id,
                    object_name=obj.name,
                    target=m.target,
                    uid=m.uid,
                    gid=m.gid,
                    mode=m.mode,
                )
            )
        return mounts

    def _write_files(
        self, change: ServiceChange, materials: Mapping[str, CertificateMaterial]
    ) -> None:
        previous: list[tuple[Path, bytes | None]] = []
        for f in change.files:
            try:
                old: bytes | None = f.path.read_bytes()
            except FileNotFoundError:
                old = None
            previous.append((f.path, old))
            write_atomic(f.path, materials[f.cert].payload(f.source), f.mode, f.owner)
        self._written[change.service] = previous

    def _restore_files(self, change: ServiceChange) -> None:
        modes = {f.path: (f.mode, f.owner) for f in change.files}
        for path, old in self._written.pop(change.service, []):
            if old is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, old, *modes[path])

    def wait(self, service: str) -> Convergence:
        deadline = time.monotonic() + self.update_timeout_s
        last = Convergence(Verdict.WAITING, "not checked yet")
        polls = 0
        while time.monotonic() < deadline and polls < self.update_timeout_s / POLL_S + 10:
            polls += 1
            state = self.swarm.service(service)
            last = evaluate(state, self.swarm.tasks(state.id), dt.datetime.now(dt.timezone.utc))
            if last.verdict is not Verdict.WAITING:
                return last
            self.report(f"{service}: {last.message}")
            time.sleep(POLL_S)
        return Convergence(
            Verdict.FAILED,
            f"not converged within {self.update_timeout_s:g} s: {last.message}",
            last.running,
            last.wanted,
        )

    def update(
        self, change: ServiceChange, materials: Mapping[str, CertificateMaterial]
    ) -> tuple[ServiceOutcome, TemplateToken | None]:
        try:
            mounts = self._mounts(change)
            self._write_files(change, materials)
            token = self.swarm.set_mounts(change.service, mounts, change.force)
        except PhoenixError as exc:
            self._restore_files(change)
            return ServiceOutcome(
                change.service, change.certs, "rolled-back", f"update refused: {exc}"
            ), None
        self.report(f"{change.service}: updated, waiting for convergence")
        verdict = self.wait(change.service)
        if verdict.verdict is Verdict.DONE:
            return ServiceOutcome(change.service, change.certs, "updated", verdict.message), token
        log.warning("%s: %s; rolling back", change.service, verdict.message)
        return self.rollback(change, token, f"did not converge: {verdict.message}"), None

    def rollback(self, change: ServiceChange, token: TemplateToken, why: str) -> ServiceOutcome:
        self.report(f"{change.service}: rolling back ({why})")
        try:
            self._restore_files(change)
            self.swarm.restore(token)
        except PhoenixError as exc:
            return ServiceOutcome(
                change.service, change.certs, "rollback-failed", f"{why}; rollback failed: {exc}"
            )
        verdict = self.wait(change.service)
        if verdict.verdict is not Verdict.DONE:
            return ServiceOutcome(
                change.service,
                change.certs,
                "rollback-failed",
                f"{why}; rollback did not converge: {verdict.message}",
            )
        return ServiceOutcome(change.service, change.certs, "rolled-back", why)

    # -- verification ------------------------------------------------------------------
    def verify(
        self, checks: Sequence[Check], expected: Mapping[str, str | None] | None = None
    ) -> list[CheckOutcome]:
        """Probe every check in parallel; `expected` overrides the fingerprint by URL."""

        def one(check: Check) -> CheckOutcome:
            want = check.expected_sha256 if expected is None else expected.get(check.url)
            result, attempts = probe_until(
                check.url, check.server_name, want, self.verify_timeout_s
            )
            ok = (
                result.error is None
                and result.http_ok
                and (want is None or result.leaf_sha256 == want)
            )
            error = result.error
            if error is None and want is not None and result.leaf_sha256 != want:
                error = (
                    f"served leaf {str(result.leaf_sha256)[:16]} is not the expected {want[:16]}"
                )
            elif error is None and not result.http_ok:
                error = f"HTTP status {result.status}"
            return CheckOutcome(check, ok, result.leaf_sha256, result.status, error, attempts)

        if not checks:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(checks))) as pool:
            return list(pool.map(one, checks))

    def served_now(self, checks: Sequence[Check]) -> dict[str, str | None]:
        """What each URL serves before we change anything: the target of a rollback check."""

        def one(check: Check) -> tuple[str, str | None]:
            result: ProbeResult = probe(check.url, check.server_name, 3.0)
            return check.url, result.leaf_sha256 if result.error is None else None

        if not checks:
            return {}
        with ThreadPoolExecutor(max_workers=min(8, len(checks))) as pool:
            return dict(pool.map(one, checks))

    # -- the whole plan ----------------------------------------------------------------
    def apply(self, plan: Plan, materials: Mapping[str, CertificateMaterial]) -> Outcome:
        changed_certs = {c for change in plan.changes for c in change.certs}
        before = self.served_now([c for c in plan.checks if c.cert in changed_certs])
        created = self.create_objects(plan, materials)
        if plan.changes:
            snapshot = self.swarm.snapshot()
            self._objects = {(o.kind, o.name): o for o in snapshot.objects}

        outcomes: dict[str, ServiceOutcome] = {}
        tokens: dict[str, TemplateToken] = {}
        if plan.changes:
            with ThreadPoolExecutor(
                max_workers=min(MAX_PARALLEL_UPDATES, len(plan.changes))
            ) as pool:
                for outcome, token in pool.map(lambda ch: self.update(ch, materials), plan.changes):
                    outcomes[outcome.service] = outcome
                    if token is not None:
                        tokens[outcome.service] = token

        converged_certs = {
            c for ch in plan.changes if outcomes[ch.service].result == "updated" for c in ch.certs
        }
        failed_certs = changed_certs - converged_certs
        checks = self.verify([c for c in plan.checks if c.cert not in failed_certs])
        bad = {o.check.cert for o in checks if not o.ok}

        # A wrong certificate served: every service that changed for it goes back.
        to_undo = [ch for ch in plan.changes if ch.service in tokens and set(ch.certs) & bad]
        for change in to_undo:
            reasons = "; ".join(
                f"{o.check.url}: {o.error}"
                for o in checks
                if o.check.cert in change.certs and not o.ok
            )
            outcomes[change.service] = self.rollback(
                change, tokens[change.service], f"verification failed: {reasons}"
            )
        undone_certs = {
            c for ch in plan.changes if outcomes[ch.service].result != "updated" for c in ch.certs
        }
        # A URL that answered nobody before the update (a wrong port in the manifest, a
        # server down already) cannot show the old certificate back; the rollback itself
        # converged, so that is "as before", not a rollback that failed.
        rollback_checks = [
            c for c in plan.checks if c.cert in undone_certs and before.get(c.url) is not None
        ]
        if rollback_checks:
            # Show that the old certificate is back.
            recheck = self.verify(rollback_checks, expected=before)
            for o in recheck:
                if not o.ok:
                    for name, s in list(outcomes.items()):
                        if o.check.cert in s.certs and s.result == "rolled-back":
                            outcomes[name] = ServiceOutcome(
                                s.service,
                                s.certs,
                                "rollback-failed",
                                f"{s.detail}; old certificate not served after rollback: {o.error}",
                            )
        return Outcome(
            plan=plan,
            created=created,
            services=tuple(outcomes[ch.service] for ch in plan.changes),
            checks=tuple(checks),
        )
