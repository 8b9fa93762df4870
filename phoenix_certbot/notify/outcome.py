"""The one place where a rotation `Outcome` becomes a `RunSummary` for notifications."""

from __future__ import annotations

from collections.abc import Mapping

from phoenix_certbot.notify.model import Event, EventKind, RunSummary
from phoenix_certbot.rotation.outcome import Outcome, ServiceResult

_KINDS = {
    ServiceResult.UPDATED: EventKind.ROTATED,
    ServiceResult.ROLLED_BACK: EventKind.ROLLED_BACK,
    ServiceResult.ROLLBACK_FAILED: EventKind.ROLLBACK_FAILED,
    ServiceResult.CONFLICT: EventKind.UPDATE_FAILED,
    ServiceResult.SUPERSEDED: EventKind.UPDATE_FAILED,
}
_QUIET = frozenset({ServiceResult.UNDONE, ServiceResult.SUPERSEDED})


def summarize(outcome: Outcome) -> RunSummary:
    """One event per (certificate, service) the run updated or tried to, and one per
    certificate left out because it failed its checks. Certificates the run did not
    touch (up to date, held after a rollback, waiting out a backoff) give none."""
    # An interrupted run's intents, resolved now: finished or rolled back is news; our own
    # unfinished work put back, or someone else's deploy left as it is, is not.
    recovered = [s for s in outcome.recovered if s.result in _KINDS and s.result not in _QUIET]
    events = [
        Event(cert, s.service, _KINDS[s.result], s.detail)
        for s in recovered + list(outcome.services)
        for cert in s.certs
    ]
    for name in outcome.skipped:
        line = next((e for e in outcome.errors if e.startswith(_prefix(name))), "")
        events.append(_skipped(name, line))
    return RunSummary(tuple(events))


def nothing_valid(skipped: Mapping[str, str]) -> RunSummary:
    """A run that stopped before any change because every certificate failed its checks
    (`skipped`: certificate -> its "certificate X skipped: ..." line)."""
    return RunSummary(tuple(_skipped(name, line) for name, line in skipped.items()))


def _prefix(name: str) -> str:
    return f"certificate {name} skipped: "


def _skipped(name: str, line: str) -> Event:
    reason = line[len(_prefix(name)) :] if line.startswith(_prefix(name)) else line
    return Event(name, "", EventKind.SKIPPED_INVALID, reason)
