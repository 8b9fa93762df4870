"""Notification messages (pure): what a run, an expiry and a test say."""

from __future__ import annotations

import datetime as dt

from phoenix_certbot.manifest.model import NotifyOn
from phoenix_certbot.notify.message import expiry_message, redact, run_messages
from phoenix_certbot.notify.model import Event, EventKind, Expiring, RunSummary

ALL = (NotifyOn.FAILURE, NotifyOn.SUCCESS, NotifyOn.EXPIRY)
RUN = RunSummary(
    (
        Event("web", "prod_web", EventKind.ROTATED),
        Event("api", "prod_api", EventKind.ROLLED_BACK, "verification failed: https://a/: x"),
        Event("api", "prod_gw", EventKind.ROLLBACK_FAILED, "rollback did not converge"),
        Event("old", "", EventKind.SKIPPED_INVALID, "/le/live/old/cert.pem: expired"),
    )
)


def test_a_failed_run_is_one_message_naming_each_certificate_service_outcome_and_reason() -> None:
    [failure] = run_messages(RUN, [NotifyOn.FAILURE], "mgr1")
    assert failure.kind is NotifyOn.FAILURE
    assert failure.title == "phoenix-cert on mgr1: rollout failed for api, old"
    assert failure.body.splitlines() == [
        "- certificate api, service prod_api: rolled back (verification failed: https://a/: x)",
        "- certificate api, service prod_gw: rollback failed (rollback did not converge)",
        "- certificate old: skipped: fails its checks (/le/live/old/cert.pem: expired)",
        "Run `phoenix-cert status` on mgr1 for details.",
    ]
    assert failure.certificates == ("api", "old")


def test_success_is_sent_only_when_asked_for_and_something_rotated() -> None:
    kinds = [m.kind for m in run_messages(RUN, ALL, "h")]
    assert kinds == [NotifyOn.FAILURE, NotifyOn.SUCCESS]
    [success] = run_messages(RUN, [NotifyOn.SUCCESS], "h")
    assert success.body == "- certificate web, service prod_web: rotated"
    assert run_messages(RunSummary(), ALL, "h") == []  # a no-op run says nothing
    quiet = RunSummary((Event("web", "prod_web", EventKind.ROTATED),))
    assert run_messages(quiet, [NotifyOn.FAILURE], "h") == []


def test_a_long_or_multi_line_reason_stays_one_short_line() -> None:
    event = Event("web", "s", EventKind.ROLLED_BACK, "a\nb" + "x" * 1000)
    [message] = run_messages(RunSummary((event,)), ALL, "h")
    first = message.body.splitlines()[0]
    assert "a b" in first and first.endswith("...)") and len(first) < 400


def test_expiry_names_each_certificate_with_its_date_and_days_left() -> None:
    when = dt.datetime(2027, 2, 1, 12, 0, tzinfo=dt.timezone.utc)
    message = expiry_message([Expiring("web", when, 5.25)], "mgr1")
    assert message.kind is NotifyOn.EXPIRY
    assert message.title == "phoenix-cert on mgr1: web expiring"
    assert message.body.splitlines()[0] == (
        "- certificate web: expires 2027-02-01 12:00 UTC (5.2 days left)"
    )


def test_redact_removes_tokens_users_passwords_and_the_url_but_keeps_host_names() -> None:
    urls = [
        "json://user:pa55word@10.0.0.5:8080/hook/T0KEN123?apikey=K3Y456",
        "tgram://123456789:AAbbCCdd/-100200",
        "ntfys://ntfy.example.org/topic-XYZ",
    ]
    text = (
        "POST http://10.0.0.5:8080/hook/T0KEN123?apikey=K3Y456 as user pa55word failed; "
        "telegram bot 123456789:AAbbCCdd chat -100200; ntfy.example.org topic-XYZ; " + urls[0]
    )
    out = redact(text, urls)
    for secret in ("pa55word", "T0KEN123", "K3Y456", "AAbbCCdd", "123456789", "topic-XYZ"):
        assert secret not in out
    assert "10.0.0.5" in out and "ntfy.example.org" in out
    assert urls[0] not in out
