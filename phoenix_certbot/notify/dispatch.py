"""Which notifications a run sends, to whom, and what was already told.

A failed notification is a warning in the log and nothing more: it never changes the
exit code or the rollout. The state directory's `notified.json` remembers when each
certificate was last told about as expiring or as invalid, and each kind of error that
stopped a run, so the hourly timer tells each at most once a day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from phoenix_certbot.errors import PhoenixError
from phoenix_certbot.fsutil import write_atomic
from phoenix_certbot.manifest.model import Manifest, NotifyOn
from phoenix_certbot.net.notify import Delivery, deliver
from phoenix_certbot.notify.message import (
    error_message,
    expiry_message,
    redact,
    run_messages,
    test_message,
)
from phoenix_certbot.notify.model import EventKind, Expiring, Message, RunSummary
from phoenix_certbot.status.model import StatusReport

log = logging.getLogger(__name__)
MEMORY_FILE = "notified.json"
ONCE_A_DAY = dt.timedelta(hours=24)


def _host() -> str:
    return socket.gethostname()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def send(manifest: Manifest, message: Message) -> list[Delivery]:
    """Deliver `message` to every configured URL; failures are logged as warnings."""
    targets = manifest.settings.notify_targets
    if not targets:
        return []
    deliveries = deliver(targets, message)
    for d in deliveries:
        if not d.ok:
            log.warning("notification to %s failed: %s", d.target.label, d.reason)
    sent = sum(d.ok for d in deliveries)
    kind = message.kind.value if message.kind else "test"
    log.info("%s notification sent to %d of %d URL(s)", kind, sent, len(targets))
    return deliveries


# -- what was told when ------------------------------------------------------------------
def _memory(state_dir: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads((state_dir / MEMORY_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s unreadable (%s); treating as empty", state_dir / MEMORY_FILE, exc)
        return {}
    return {
        str(k): {str(c): str(t) for c, t in v.items()}
        for k, v in data.items()
        if isinstance(v, dict)
    }


def _told_recently(
    memory: dict[str, dict[str, str]], topic: str, cert: str, now: dt.datetime
) -> bool:
    raw = memory.get(topic, {}).get(cert)
    if raw is None:
        return False
    try:
        return now - dt.datetime.fromisoformat(raw) < ONCE_A_DAY
    except (TypeError, ValueError):
        return False


def _remember(state_dir: Path, topic: str, certs: Sequence[str], now: dt.datetime) -> None:
    memory = _memory(state_dir)
    memory.setdefault(topic, {}).update({c: now.isoformat(timespec="seconds") for c in certs})
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(state_dir / MEMORY_FILE, json.dumps(memory, indent=2).encode(), 0o600)
    except OSError as exc:
        log.warning("%s: cannot remember the notification: %s", state_dir / MEMORY_FILE, exc)


# -- the three occasions -----------------------------------------------------------------
def notify_run(manifest: Manifest, summary: RunSummary) -> None:
    """After a rotation run: a failure and/or a success message, as `notify_on` says."""
    settings = manifest.settings
    if not settings.notify_targets:
        return
    try:
        now = _now()
        memory = _memory(settings.state_dir)
        # A certificate that stays invalid is skipped by every hourly run: tell it once a day.
        repeated = {
            e.certificate
            for e in summary.events
            if e.kind is EventKind.SKIPPED_INVALID
            and _told_recently(memory, "invalid", e.certificate, now)
        }
        summary = replace(
            summary,
            events=tuple(
                e
                for e in summary.events
                if not (e.kind is EventKind.SKIPPED_INVALID and e.certificate in repeated)
            ),
        )
        for message in run_messages(summary, settings.notify_on, _host()):
            if any(d.ok for d in send(manifest, message)) and message.kind is NotifyOn.FAILURE:
                invalid = [
                    e.certificate for e in summary.failures if e.kind is EventKind.SKIPPED_INVALID
                ]
                if invalid:
                    _remember(settings.state_dir, "invalid", invalid, now)
    except Exception:  # a notification never fails the run
        log.warning("notification not sent: internal error", exc_info=log.isEnabledFor(10))


def notify_error(manifest: Manifest, command: str, error: PhoenixError) -> None:
    """A run of `command` that `error` stopped: one failure message, at most once a day per
    command and kind of error (the hourly timer meets the same one every hour)."""
    settings = manifest.settings
    if NotifyOn.FAILURE not in settings.notify_on or not settings.notify_targets:
        return
    try:
        now = _now()
        topic = f"{command}: {type(error).__name__}"
        if _told_recently(_memory(settings.state_dir), "error", topic, now):
            return
        text = redact(str(error), (t.url for t in settings.notify_targets))
        if any(
            d.ok for d in send(manifest, error_message(command, error.exit_code, text, _host()))
        ):
            _remember(settings.state_dir, "error", [topic], now)
    except Exception:  # a notification never changes how the run ends
        log.warning("notification not sent: internal error", exc_info=log.isEnabledFor(10))


def expiring(report: StatusReport, warn_days: float) -> list[Expiring]:
    """Certificates on disk that expire within `warn_days` of the report (pure)."""
    found = []
    for cert in report.certificates:
        days = cert.disk.days_left(report.now)
        if cert.disk.not_after is not None and days is not None and days < warn_days:
            found.append(Expiring(cert.name, cert.disk.not_after, days))
    return found


def notify_expiry(manifest: Manifest, report: StatusReport, warn_days: float) -> int:
    """`status --notify`: one message for the certificates within `warn_days` that were
    not told about in the last day. Returns how many certificates it named."""
    settings = manifest.settings
    if NotifyOn.EXPIRY not in settings.notify_on or not settings.notify_targets:
        log.warning(
            'status --notify: nothing sent (settings.notify_on lacks "expiry" or no '
            "notify URL is configured)"
        )
        return 0
    memory = _memory(settings.state_dir)
    due = [
        e
        for e in expiring(report, warn_days)
        if not _told_recently(memory, "expiry", e.certificate, report.now)
    ]
    if not due:
        return 0
    if any(d.ok for d in send(manifest, expiry_message(due, _host()))):
        _remember(settings.state_dir, "expiry", [e.certificate for e in due], report.now)
    return len(due)


def notify_test(manifest: Manifest) -> list[Delivery]:
    return send(manifest, test_message(_host()))
