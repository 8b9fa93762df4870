"""Resolve what an interrupted run left in the journal, before a command does anything else.

Every command that takes the run lock calls `resolve_intents` first. For each intent, from
what swarm shows (`spec_match`) and what the URLs serve:

- our update is in place, swarm converged on it, and every URL serves the new leaf (or
  fails only as it did before the run): finished. Recorded as deployed; intent cleared.
- otherwise: undone. Files and mounts put back, swarm converged, the old leaf served again
  where one was served before; intent cleared. If the update had reached swarm, a failed
  rollout: recorded once (the intent's rollout id: a run that decided the rollback but
  could not finish it has counted it already), exit 1. If it never had (killed between the
  `files` writes and the update), only our own unfinished work was put back: `undone`, no
  failure.
- someone else changed the service since: left as it is. If it converges and serves the old
  or the new leaf, the intent is cleared (superseded: no failure of the run that finds it).
- anything that cannot be established: the intent is kept, and the command stops with exit 4
  and what to do, before it changes anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from phoenix_certbot.errors import PartialFailure
from phoenix_certbot.rotation import probing
from phoenix_certbot.rotation.converge import Verdict
from phoenix_certbot.rotation.journal import Intent, Journal, Origin, Phase
from phoenix_certbot.rotation.lease import LeaseLost, unfenced
from phoenix_certbot.rotation.outcome import ServiceOutcome, ServiceResult
from phoenix_certbot.rotation.spec_match import Match, classify
from phoenix_certbot.rotation.state import StateStore
from phoenix_certbot.rotation.steps import (
    FileChanged,
    Reporter,
    Steps,
    file_sha256,
    restore_files,
)
from phoenix_certbot.rotation.watch import Watch
from phoenix_certbot.swarm.client import NotFound, SwarmClient
from phoenix_certbot.swarm.model import ServiceState, UpdateState

log = logging.getLogger(__name__)
_AFTER = frozenset({Match.AFTER})
_SWARM_UNDID = frozenset(
    {UpdateState.ROLLBACK_STARTED, UpdateState.ROLLBACK_PAUSED, UpdateState.ROLLBACK_COMPLETED}
)


class IntentUnresolved(PartialFailure):
    """An interrupted update could be neither finished nor undone."""


@dataclass(frozen=True)
class Resolution:
    outcome: ServiceOutcome | None  # None: nothing had changed, nothing to report
    resolved: bool  # the intent can go
    failed_rollout: bool = False  # the update reached swarm and was undone


def resolve_intents(
    store: StateStore,
    connect: Callable[[], SwarmClient],
    *,
    update_timeout_s: float,
    verify_timeout_s: float,
    report: Reporter,
    fence: Callable[[], None] = unfenced,
) -> tuple[ServiceOutcome, ...]:
    """Finish or undo every open intent; `connect` is called only if there is one.
    `fence` before each service update (LeaseLost stops it, the intents kept)."""
    journal = Journal(store.directory)
    intents = journal.read_all()
    if not intents:
        return ()
    swarm = connect()
    steps = Steps(swarm, journal, update_timeout_s, report, Watch(swarm), fence)
    outcomes: list[ServiceOutcome] = []
    stuck: list[str] = []
    for intent in intents:
        log.warning(
            "%s: an earlier run was interrupted during its %s (%s); resolving it first",
            intent.service,
            intent.phase.value,
            journal.path(intent.service_id),
        )
        try:
            found = _resolve(steps, intent, verify_timeout_s)
        except LeaseLost:
            raise
        except Exception as exc:  # Docker gone mid-way, say: still unresolved, keep it
            unknown = _outcome(intent, ServiceResult.ROLLBACK_FAILED, f"not resolved: {exc}")
            found = Resolution(unknown, resolved=False)
        if found.outcome is not None:
            outcomes.append(found.outcome)
        if not found.resolved:
            detail = found.outcome.detail if found.outcome else "unknown"
            stuck.append(f"{journal.path(intent.service_id)}: service {intent.service}: {detail}")
            continue
        _record(store, intent, found)
        journal.clear(intent.service_id)
    if stuck:
        raise IntentUnresolved(
            "an interrupted update could be neither finished nor undone ("
            + "; ".join(stuck)
            + "); make the service serve a valid certificate (or check that it does), then "
            "delete the intent file; until then every run retries it and stops here"
        )
    return tuple(outcomes)


def _resolve(steps: Steps, intent: Intent, verify_timeout_s: float) -> Resolution:
    try:
        state = steps.swarm.service(intent.service_id)
    except NotFound:
        state = None
    found = classify(state, intent)
    if found.match is Match.GONE:
        try:
            restore_files(intent)
        except FileChanged as exc:
            return Resolution(_outcome(intent, ServiceResult.CONFLICT, str(exc)), resolved=False)
        gone = _outcome(intent, ServiceResult.SUPERSEDED, "the service no longer exists")
        return Resolution(gone, resolved=True)
    if found.match is Match.FOREIGN:
        why = f"changed by someone else: {found.describe()}"
        return _left_alone(steps, intent, why, verify_timeout_s)
    assert state is not None  # noqa: S101 - GONE above
    reached = _reached(intent, state, found.match)
    if not reached and not _files_changed(intent):
        log.info("%s: the interrupted update never reached it; nothing to undo", intent.service)
        return Resolution(None, resolved=True)
    if intent.phase is Phase.UPDATE and found.match is Match.AFTER:
        return _finish_or_undo(steps, intent, verify_timeout_s)
    if not reached:
        why = "an interrupted update had written its files but not updated the service"
    elif intent.phase is Phase.ROLLBACK:
        why = "an interrupted rollback"
    else:
        why = "an interrupted update that is no longer in place (swarm rolled it back)"
    return _undo(steps, intent, why, verify_timeout_s, reached=reached)


def _reached(intent: Intent, state: ServiceState, match: Match) -> bool:
    """Did the update land in swarm at some point? The spec alone cannot tell "never sent"
    from "sent, then undone": the journal (a rollback begun, the version after noted) and
    swarm's own rollback state can."""
    return (
        match is not Match.BEFORE
        or intent.phase is Phase.ROLLBACK
        or intent.version_after is not None
        or state.update_state in _SWARM_UNDID
    )


def _finish_or_undo(steps: Steps, intent: Intent, verify_timeout_s: float) -> Resolution:
    """Our update is in place: finished if swarm converged and the new leaf is served."""
    verdict = steps.converge(intent, _AFTER)
    if verdict.verdict is Verdict.CONFLICT:
        return _left_alone(steps, intent, verdict.message, verify_timeout_s)
    if verdict.verdict is not Verdict.DONE:
        why = f"an interrupted update did not converge: {verdict.message}"
        return _undo(steps, intent, why, verify_timeout_s, reached=True)
    checks, before = probing.as_checks(intent.checks)
    blocking = [r for r in probing.verify(checks, before, verify_timeout_s) if r.blocking]
    if blocking:
        why = "an interrupted update failed verification: " + "; ".join(
            f"{r.check.url}: {r.error}" for r in blocking
        )
        return _undo(steps, intent, why, verify_timeout_s, reached=True)
    done = _outcome(intent, ServiceResult.UPDATED, "finished an interrupted update")
    return Resolution(done, resolved=True)


def _undo(
    steps: Steps, intent: Intent, why: str, verify_timeout_s: float, *, reached: bool
) -> Resolution:
    """`reached`: the update had landed, so undoing it is a failed rollout (backoff);
    otherwise only our own unfinished work is put back (`UNDONE`: no failure)."""
    undone, intent = steps.undo(intent, why)
    if undone.result is ServiceResult.CONFLICT:
        return _left_alone(steps, intent, undone.detail, verify_timeout_s)
    if undone.result is not ServiceResult.ROLLED_BACK:
        return Resolution(undone, resolved=undone.result is ServiceResult.SUPERSEDED)
    back = [r for r in probing.verify_restored(intent.checks, set(), verify_timeout_s) if not r.ok]
    if back:
        failed = replace(
            undone,
            result=ServiceResult.ROLLBACK_FAILED,
            detail=f"{undone.detail}; old certificate not served after rollback: {back[0].error}",
        )
        return Resolution(failed, resolved=False)
    if not reached:
        put_back = replace(undone, result=ServiceResult.UNDONE, detail=f"{why}; files put back")
        return Resolution(put_back, resolved=True)
    return Resolution(undone, resolved=True, failed_rollout=True)


def _outcome(intent: Intent, result: ServiceResult, detail: str) -> ServiceOutcome:
    return ServiceOutcome(intent.service, intent.certs, result, detail, intent.service_id)


def _left_alone(steps: Steps, intent: Intent, why: str, verify_timeout_s: float) -> Resolution:
    """Someone else's spec stays; the intent goes once the service converged and serves
    the old or the new leaf."""
    verdict = steps.converge(intent, None)
    bad = [
        r
        for r in probing.verify_restored(intent.checks, set(intent.certs), verify_timeout_s)
        if not r.ok
    ]
    if verdict.verdict is Verdict.DONE and not bad:
        kept = f"{why}; left as it is, it serves a valid certificate"
        return Resolution(_outcome(intent, ServiceResult.SUPERSEDED, kept), resolved=True)
    problem = bad[0].error if bad else verdict.message
    unverified = f"{why}; left as it is, but not verified: {problem}"
    return Resolution(_outcome(intent, ServiceResult.CONFLICT, unverified), resolved=False)


def _files_changed(intent: Intent) -> bool:
    return any(file_sha256(f.path) != f.previous_sha256 for f in intent.files)


def _record(store: StateStore, intent: Intent, found: Resolution) -> None:
    result = found.outcome.result if found.outcome else None
    if result is ServiceResult.UPDATED and intent.origin is Origin.ROLLBACK:
        for cert, leaf in intent.leaves:
            urls = {c.url: True for c in intent.checks if c.cert == cert}
            store.record_verification(cert, urls, leaf or None)
        for cert, leaf in intent.hold:
            store.hold(cert, leaf)
    elif result is ServiceResult.UPDATED:
        for cert, leaf in intent.leaves:
            restarted = (intent.service,) if cert in intent.restarted else ()
            store.record_rotation(cert, leaf, "ok", verified=True, restarted_services=restarted)
    elif found.failed_rollout and intent.origin is Origin.ROTATE:
        for cert, leaf in intent.leaves:
            store.record_rotation(cert, leaf, "failed", verified=False, rollout=intent.rollout)
