"""The one place where a rotation `Outcome` becomes a `RunSummary` for notifications."""

from __future__ import annotations

from phoenix_certbot.notify.model import Event, EventKind, RunSummary
from phoenix_certbot.rotation.apply import Outcome

_KINDS = {
    "updated": EventKind.ROTATED,
    "rolled-back": EventKind.ROLLED_BACK,
    "rollback-failed": EventKind.ROLLBACK_FAILED,
    "failed": EventKind.UPDATE_FAILED,
}


def summarize(outcome: Outcome) -> RunSummary:
    """One event per (certificate, service) the run updated or tried to, and one per
    certificate left out because it failed its checks. Certificates the run did not
    touch (up to date, held after a rollback, waiting out a backoff) give none."""
    events = [
        Event(cert, s.service, _KINDS.get(s.result, EventKind.UPDATE_FAILED), s.detail)
        for s in outcome.services
        for cert in s.certs
    ]
    for name in outcome.skipped:
        prefix = f"certificate {name} skipped: "
        reason = next((e[len(prefix) :] for e in outcome.errors if e.startswith(prefix)), "")
        events.append(Event(name, "", EventKind.SKIPPED_INVALID, reason))
    return RunSummary(tuple(events))
