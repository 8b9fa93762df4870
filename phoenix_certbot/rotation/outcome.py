"""What a run did, as values: one result per service and per URL check, and the run's result.

The enum values are the words of the JSON output and the text report (`render`): they are
part of the CLI's contract.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum

from phoenix_certbot.errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL
from phoenix_certbot.rotation.plan import Check, Plan


class ServiceResult(str, Enum):
    UPDATED = "updated"  # runs the new version, converged (and verified, when checked)
    ROLLED_BACK = "rolled-back"  # back on what it ran before, converged, old leaf served
    ROLLBACK_FAILED = "rollback-failed"  # neither state could be established: an operator
    CONFLICT = "conflict"  # someone else changed the service meanwhile: left as it is
    # Someone else changed it before an interrupted run was resolved; left as it is and
    # checked to serve the old or the new certificate.
    SUPERSEDED = "superseded"
    # Recovery only: an interrupted run's own work that never reached the service (its
    # `files` written, no update sent), put back. Nothing had failed.
    UNDONE = "undone"


class RunResult(Enum):
    OK = EXIT_OK
    FAILED = EXIT_FAILED  # something did not happen, nothing is left broken
    PARTIAL = EXIT_PARTIAL  # a service is not in a verified state: an operator must look

    @property
    def exit_code(self) -> int:
        return int(self.value)


@dataclass(frozen=True)
class ServiceOutcome:
    service: str
    certs: tuple[str, ...]  # the certificates whose mounts or files changed in this service
    result: ServiceResult
    detail: str = ""
    service_id: str = ""


@dataclass(frozen=True)
class CheckOutcome:
    check: Check
    ok: bool
    served_sha256: str | None
    status: int | None
    error: str | None
    attempts: int
    # Why the URL failed before anything changed, if it did: such a failure is reported
    # and is never by itself a reason to roll back.
    failing_before: str | None = None
    waived: bool = False  # failed only in the way it already failed before the run

    @property
    def blocking(self) -> bool:
        """A failure that rolls the certificate's services back."""
        return not self.ok and not self.waived


@dataclass(frozen=True)
class Waiting:
    """A certificate left out because its last rollouts of this leaf failed (backoff)."""

    cert: str
    failures: int
    until: dt.datetime


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    created: tuple[str, ...] = ()
    services: tuple[ServiceOutcome, ...] = ()
    checks: tuple[CheckOutcome, ...] = ()
    pruned: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # certificates left out because they failed their checks
    recovered: tuple[ServiceOutcome, ...] = ()  # intents of an interrupted run, resolved
    waiting: tuple[Waiting, ...] = ()  # asked for, but backing off after failed rollouts
    rollout: str = ""  # the id its intents carry: a failure is counted once per rollout

    @property
    def result(self) -> RunResult:
        """What the exit code says about this run. Recovery that finished an interrupted
        update, put back work of ours that never reached the service, or found the service
        superseded by someone else's deploy is reported, but is no failure of this run;
        recovery that rolled back a failed rollout is (it counts for the backoff too)."""
        services = self.services + self.recovered
        if any(s.result in _NEEDS_OPERATOR for s in services):
            return RunResult.PARTIAL
        if (
            self.errors
            or self.plan.problems
            or self.waiting
            or any(s.result is not ServiceResult.UPDATED for s in self.services)
            or any(s.result not in _RECOVERED_FINE for s in self.recovered)
            or any(not c.ok for c in self.checks)
        ):
            return RunResult.FAILED
        return RunResult.OK

    @property
    def exit_code(self) -> int:
        return self.result.exit_code

    def rolled_back_certs(self) -> set[str]:
        """Certificates whose rollout failed in some service: what a backoff is about (not
        a service someone else changed meanwhile: that says nothing about the leaf)."""
        return {c for s in self.services if s.result in _ROLLOUT_FAILED for c in s.certs}

    def failed_certs(self) -> set[str]:
        """Certificates not deployed and verified as asked (legacy commands skip them; a
        post hook keeps their lineages pending)."""
        bad = {c.check.cert for c in self.checks if c.blocking} | set(self.skipped)
        bad |= {w.cert for w in self.waiting}
        return bad | {
            c for s in self.services if s.result is not ServiceResult.UPDATED for c in s.certs
        }


_NEEDS_OPERATOR = frozenset({ServiceResult.ROLLBACK_FAILED, ServiceResult.CONFLICT})
_RECOVERED_FINE = frozenset({ServiceResult.UPDATED, ServiceResult.UNDONE, ServiceResult.SUPERSEDED})
_ROLLOUT_FAILED = frozenset({ServiceResult.ROLLED_BACK, ServiceResult.ROLLBACK_FAILED})
