"""Messages for a run, for expiring certificates and for `notify-test` (pure).

A message names certificates, services, outcomes and reasons: never key material (it
never reaches this module) and never a notify URL (see `redact` for text from Apprise).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from phoenix_certbot.manifest.model import NotifyOn
from phoenix_certbot.notify.model import Event, Expiring, Message, RunSummary

_MAX_REASON = 300  # a reason is one line of a phone notification, not a log


def _line(event: Event) -> str:
    where = f", service {event.service}" if event.service else ""
    reason = event.reason.replace("\n", " ")
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 3] + "..."
    return f"- certificate {event.certificate}{where}: {event.kind.value}" + (
        f" ({reason})" if reason else ""
    )


def _about(kind: NotifyOn, events: Sequence[Event], what: str, host: str) -> Message:
    certs = tuple(dict.fromkeys(e.certificate for e in events))
    lines = [_line(e) for e in events]
    if kind is NotifyOn.FAILURE:
        lines.append(f"Run `phoenix-cert status` on {host} for details.")
    return Message(
        kind, f"phoenix-cert on {host}: {what} {', '.join(certs)}", "\n".join(lines), certs
    )


def run_messages(summary: RunSummary, notify_on: Iterable[NotifyOn], host: str) -> list[Message]:
    """At most one failure and one success message for a run."""
    wanted = set(notify_on)
    messages = []
    if summary.failures and NotifyOn.FAILURE in wanted:
        messages.append(_about(NotifyOn.FAILURE, summary.failures, "rollout failed for", host))
    if summary.rotations and NotifyOn.SUCCESS in wanted:
        messages.append(_about(NotifyOn.SUCCESS, summary.rotations, "rotated", host))
    return messages


def error_message(command: str, exit_code: int, error: str, host: str) -> Message:
    """A run that ended with an error before it could report any rollout (Docker away,
    the lease held or taken by another run, a state file it cannot read)."""
    text = error.replace("\n", " ")
    if len(text) > _MAX_REASON:
        text = text[: _MAX_REASON - 3] + "..."
    return Message(
        NotifyOn.FAILURE,
        f"phoenix-cert on {host}: {command} failed (exit {exit_code})",
        f"{text}\nRun `phoenix-cert status` on {host} for details.",
    )


def expiry_message(expiring: Sequence[Expiring], host: str) -> Message:
    lines = [
        f"- certificate {e.certificate}: expires {e.not_after:%Y-%m-%d %H:%M} UTC "
        f"({e.days_left:.1f} days left)"
        for e in expiring
    ]
    lines.append(f"Renew with certbot, then `phoenix-cert rotate NAME` on {host}.")
    return Message(
        NotifyOn.EXPIRY,
        f"phoenix-cert on {host}: {', '.join(e.certificate for e in expiring)} expiring",
        "\n".join(lines),
        tuple(e.certificate for e in expiring),
    )


def test_message(host: str) -> Message:
    return Message(
        None,
        f"phoenix-cert on {host}: test notification",
        "This is a test from `phoenix-cert notify-test`; notifications reach you here.",
    )


_SEPARATORS = re.compile(r"[/:@?&=#,;+\s]+")
_HOSTNAME = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$")


def redact(text: str, urls: Iterable[str]) -> str:
    """`text` with every part of `urls` that may be a secret replaced by `****`: user,
    password, tokens in the path or the query. Host names with a dot and IP addresses
    stay (they say where a delivery failed); a bare word in the host place may be a token
    (`tgram://TOKEN/...`) and goes too."""
    secrets: set[str] = set()
    for url in urls:
        _, _, rest = url.partition("://")
        for part in _SEPARATORS.split(rest):
            if len(part) >= 3 and not _HOSTNAME.match(part):
                secrets.add(part)
        if "://" in url:
            secrets.add(url)
    for secret in sorted(secrets, key=len, reverse=True):  # longest first: no partial leftovers
        text = text.replace(secret, "****")
    return text
