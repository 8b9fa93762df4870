"""Execute a rotation plan, phase by phase: observe what is served, journal each service's
intent, create the versions, update each service once (waiting for swarm), verify the new
leaf is served, undo what failed, check that the old leaf is back where it was undone, and
wait until swarm's own update state is final for every service touched.

Each phase is a method that takes values and returns values; `apply` is the list of them.
Prune and record are the caller's (`run`), then `close` clears the settled intents.

Invariant: a service is only ever switched between objects that exist, and objects are
removed only when no service's current or previous spec refers to them, so a crash at any
point leaves each service on the old or the new certificate, and its intent on disk says
which way the next run must go (`recovery`).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

from phoenix_certbot import failpoints
from phoenix_certbot.certs import CertificateMaterial
from phoenix_certbot.errors import DockerUnavailable, PhoenixError
from phoenix_certbot.manifest.model import MAX_PARALLEL_UPDATES, ObjectKind
from phoenix_certbot.rotation import probing
from phoenix_certbot.rotation.journal import Intent, Journal, Origin
from phoenix_certbot.rotation.lease import unfenced
from phoenix_certbot.rotation.outcome import (
    CheckOutcome,
    Outcome,
    ServiceOutcome,
    ServiceResult,
)
from phoenix_certbot.rotation.plan import NewObject, Plan, ServiceChange
from phoenix_certbot.rotation.steps import Steps
from phoenix_certbot.rotation.watch import Watch
from phoenix_certbot.swarm import model as sm
from phoenix_certbot.swarm.client import SwarmClient

log = logging.getLogger(__name__)
_SETTLED = frozenset({ServiceResult.UPDATED, ServiceResult.ROLLED_BACK, ServiceResult.SUPERSEDED})

Reporter = Callable[[str], None]
_Item = TypeVar("_Item")
Objects = Mapping[tuple[ObjectKind, str], sm.DeployedObject]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class Progress:
    """One service, after a phase: its intent (as journaled) and its outcome so far."""

    change: ServiceChange
    intent: Intent
    outcome: ServiceOutcome


@dataclass
class Engine:
    swarm: SwarmClient
    journal: Journal
    update_timeout_s: float = 180.0
    verify_timeout_s: float = 60.0
    report: Reporter = _quiet
    max_parallel_updates: int = MAX_PARALLEL_UPDATES
    origin: Origin = Origin.ROTATE
    # `phoenix-cert rollback`: certificate -> leaf on disk, held once the rollback is done.
    holds: Mapping[str, str] = field(default_factory=dict)
    # Before each service update: the run still holds the swarm lease (`SwarmLease.check`).
    fence: Callable[[], None] = unfenced

    _watch: Watch | None = field(default=None, init=False, repr=False)

    @property
    def steps(self) -> Steps:
        if self._watch is None:
            self._watch = Watch(self.swarm)
        return Steps(
            self.swarm, self.journal, self.update_timeout_s, self.report, self._watch, self.fence
        )

    def apply(
        self,
        plan: Plan,
        materials: Mapping[str, CertificateMaterial],
        seen: sm.SwarmSnapshot | None = None,
    ) -> Outcome:
        """`seen`: the swarm as the plan read it (under the run lock), so that neither the
        services nor the objects are read again before the updates."""
        rollout = secrets.token_hex(8)
        before = self.observe(plan)
        intents = self.write_intents(plan, before, rollout, seen)
        failpoints.hit("journal-written")
        created, objects = self.create(plan, materials, intents, seen)
        failpoints.hit("objects-created")
        progress = self.update(plan, intents, objects, materials)
        checks = self.verify(plan, progress, before)
        progress = self.undo(progress, checks)
        progress = self.recheck(progress)
        progress = self.settle(progress)
        return Outcome(
            plan=plan,
            created=created,
            services=tuple(progress[ch.service].outcome for ch in plan.changes),
            checks=tuple(checks),
            rollout=rollout,
        )

    def close(self, outcome: Outcome) -> None:
        """Clear the intents of services that are settled; keep the others for the next
        run (a rollback that failed, a service someone else changed)."""
        settled = [s.service_id for s in outcome.services if s.result in _SETTLED]
        try:
            self.journal.clear_all([ident for ident in settled if ident])
        except OSError as exc:  # the next run finds them settled and clears them
            log.warning("%s: %s", self.journal.directory, exc)

    # -- phases ------------------------------------------------------------------------
    def observe(self, plan: Plan) -> dict[probing.Key, probing.Served]:
        """What each URL of a changing certificate serves before anything changes."""
        changing = {c for ch in plan.changes for c in ch.changed_certs}
        return probing.observe([c for c in plan.checks if c.cert in changing])

    def write_intents(
        self,
        plan: Plan,
        before: Mapping[probing.Key, probing.Served],
        rollout: str,
        seen: sm.SwarmSnapshot | None = None,
    ) -> dict[str, Intent]:
        """Every service's intent, durable before anything changes (one folder fsync for
        the whole wave). A failure here (a full disk, Docker gone) stops the run with
        nothing changed."""
        checks = probing.leaf_checks(plan.checks, before)
        leaves = dict(plan.leaves)
        steps = self.steps
        intents = {
            change.service: steps.intent(
                change,
                self.origin,
                leaves,
                checks,
                self.holds,
                seen.service(change.service) if seen else None,
            )
            for change in plan.changes
        }
        intents = {name: replace(i, rollout=rollout) for name, i in intents.items()}
        try:
            self.journal.write_all(list(intents.values()))
        except BaseException:
            self._forget(intents.values())
            raise
        return intents

    def create(
        self,
        plan: Plan,
        materials: Mapping[str, CertificateMaterial],
        intents: Mapping[str, Intent],
        seen: sm.SwarmSnapshot | None = None,
    ) -> tuple[tuple[str, ...], Objects]:
        """The new versions, and every object a mount may point at (those the plan saw and
        those just created). No service changed yet: on a failure the intents go and the
        error stands (Docker unreachable: exit 3)."""
        created: list[str] = []
        made: list[sm.DeployedObject] = []
        try:
            for new in plan.creates:
                payload = materials[new.cert].payload(new.source)
                made.append(self.swarm.create_object(new.kind, new.name, payload, _labels(new)))
                created.append(new.name)
                self.report(f"created {new.kind.value} {new.name}")
            known = (seen or self.swarm.snapshot()).objects if plan.changes else ()
            objects = {(o.kind, o.name): o for o in (*known, *made)}
        except BaseException:
            self._forget(intents.values())
            raise
        return tuple(created), objects

    def update(
        self,
        plan: Plan,
        intents: Mapping[str, Intent],
        objects: Objects,
        materials: Mapping[str, CertificateMaterial],
    ) -> dict[str, Progress]:
        """Each service once, in parallel: forward, and straight back if swarm does not
        converge (a service that crash-loops must not wait for the others)."""

        def one(change: ServiceChange) -> Progress:
            steps = self.steps
            forward = steps.forward(change, intents[change.service], objects, materials)
            intent = forward.intent
            if forward.converged:
                outcome = ServiceOutcome(
                    change.service,
                    change.changed_certs,
                    ServiceResult.UPDATED,
                    forward.detail,
                    intent.service_id,
                )
                return Progress(change, intent, outcome)
            if forward.conflict:
                outcome = ServiceOutcome(
                    change.service,
                    change.changed_certs,
                    ServiceResult.CONFLICT,
                    f"{forward.detail}; left as it is",
                    intent.service_id,
                )
                return Progress(change, intent, outcome)
            log.warning("%s: %s; rolling back", change.service, forward.detail)
            why = forward.detail
            if not why.startswith("update failed"):
                why = f"did not converge: {why}"
            outcome, intent = steps.undo(intent, why)
            return Progress(change, intent, outcome)

        return {p.change.service: p for p in self._each(one, plan.changes)}

    def verify(
        self,
        plan: Plan,
        progress: Mapping[str, Progress],
        before: Mapping[probing.Key, probing.Served],
    ) -> list[CheckOutcome]:
        """The new leaf on every URL, except for certificates whose update failed (their
        services are back already)."""
        failed = {
            c
            for p in progress.values()
            if p.outcome.result is not ServiceResult.UPDATED
            for c in p.change.changed_certs
        }
        checks = [c for c in plan.checks if c.cert not in failed]
        return probing.verify(checks, before, self.verify_timeout_s)

    def undo(
        self, progress: Mapping[str, Progress], checks: Sequence[CheckOutcome]
    ) -> dict[str, Progress]:
        """A wrong leaf served: every service updated for that certificate goes back. A URL
        that failed the same way before the run is no reason (`CheckOutcome.waived`)."""
        bad = {o.check.cert for o in checks if o.blocking}
        doomed = [
            p
            for p in progress.values()
            if p.outcome.result is ServiceResult.UPDATED and set(p.change.changed_certs) & bad
        ]

        def one(p: Progress) -> Progress:
            reasons = "; ".join(
                f"{o.check.url}: {o.error}"
                for o in checks
                if o.blocking and o.check.cert in p.change.changed_certs
            )
            outcome, intent = self.steps.undo(p.intent, f"verification failed: {reasons}")
            return Progress(p.change, intent, outcome)

        done = dict(progress)
        done.update({p.change.service: p for p in self._each(one, doomed)})
        return done

    def recheck(self, progress: Mapping[str, Progress]) -> dict[str, Progress]:
        """Show that each service rolled back serves the old leaf again. A URL that served
        nothing before cannot show it; the rollback converged, which is "as before"."""
        undone = [p for p in progress.values() if p.outcome.result is ServiceResult.ROLLED_BACK]
        if not undone:
            return dict(progress)
        # A certificate some service still deploys may be served new at a URL: either leaf.
        kept = {
            c
            for p in progress.values()
            if p.outcome.result is ServiceResult.UPDATED
            for c in p.change.changed_certs
        }
        leaf_checks = {(c.cert, c.url): c for p in undone for c in p.intent.checks}
        results = probing.verify_restored(list(leaf_checks.values()), kept, self.verify_timeout_s)
        failures = {o.check.cert: o for o in results if not o.ok}
        done = dict(progress)
        for p in undone:
            bad = next((failures[c] for c in p.outcome.certs if c in failures), None)
            if bad is not None:
                outcome = replace(
                    p.outcome,
                    result=ServiceResult.ROLLBACK_FAILED,
                    detail=f"{p.outcome.detail}; old certificate not served after rollback: "
                    f"{bad.error}",
                )
                done[p.change.service] = replace(p, outcome=outcome)
        return done

    def settle(self, progress: Mapping[str, Progress]) -> dict[str, Progress]:
        """Return only once swarm's own update state is final for every service touched
        (someone else's deploy may still run after a conflict): bounded by the update
        timeout for all of them together."""
        deadline = time.monotonic() + self.update_timeout_s
        done = dict(progress)
        try:  # one look at all of them; usually every one is final already
            states = self.swarm.services_by_id({p.intent.service_id for p in progress.values()})
        except DockerUnavailable as exc:  # each further call would hang as long
            log.warning("%s; swarm's update state not read", exc)
            states, deadline = {}, time.monotonic()
        except PhoenixError:
            states = {}
        for name, p in progress.items():
            state = states.get(p.intent.service_id)
            if state is not None and state.update_state.final:
                continue
            if time.monotonic() >= deadline:  # no call past the bound: the outcomes stand
                log.warning("%s: swarm's update state not read within the update timeout", name)
                continue
            try:
                still = self.steps.settle(p.intent.service_id, deadline)
            except DockerUnavailable as exc:  # each further call would hang as long
                log.warning("%s: %s; swarm's update state not read", name, exc)
                deadline = time.monotonic()
                continue
            except PhoenixError as exc:  # gone: the outcome stands
                log.warning("%s: %s", name, exc)
                continue
            if still is not None:
                detail = f"{p.outcome.detail}; swarm's update still {still}"
                done[name] = replace(p, outcome=replace(p.outcome, detail=detail))
        return done

    # -- helpers -----------------------------------------------------------------------
    def _each(self, fn: Callable[[_Item], Progress], items: Sequence[_Item]) -> list[Progress]:
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_parallel_updates, len(items))) as pool:
            return list(pool.map(fn, items))

    def _forget(self, intents: Iterable[Intent]) -> None:
        for intent in intents:
            try:
                self.journal.clear(intent.service_id)
            except OSError as exc:  # the next run's recovery finds nothing changed
                log.warning("%s: %s", self.journal.path(intent.service_id), exc)


def _labels(new: NewObject) -> dict[str, str]:
    return {
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
