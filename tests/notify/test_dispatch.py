"""What is sent when, against a real receiver on loopback; once-a-day memory."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from phoenix_certbot.errors import DockerUnavailable, PartialFailure
from phoenix_certbot.manifest.model import Manifest, NotifyOn, NotifyTarget, Settings
from phoenix_certbot.notify import dispatch
from phoenix_certbot.notify.model import Event, EventKind, RunSummary
from tests.status.reports import sample_report
from tests.support.receiver import TOKEN, json_receiver


def manifest(tmp_path: Path, url: str, *on: NotifyOn) -> Manifest:
    settings = Settings(
        state_dir=tmp_path / "state",
        notify_targets=(NotifyTarget(url, "settings.notify_urls[0]"),),
        notify_on=frozenset(on or (NotifyOn.FAILURE,)),
    )
    return Manifest(tmp_path / "m.json", 2, settings, ())


SKIPPED = RunSummary((Event("old", "", EventKind.SKIPPED_INVALID, "expired"),))
ROLLED_BACK = RunSummary((Event("web", "prod_web", EventKind.ROLLED_BACK, "x"),))


def test_a_certificate_skipped_as_invalid_is_told_once_a_day_a_failed_rollout_every_time(
    tmp_path: Path,
) -> None:
    with json_receiver() as receiver:
        m = manifest(tmp_path, receiver.url)
        dispatch.notify_run(m, SKIPPED)
        dispatch.notify_run(m, SKIPPED)  # the next hourly run: already told today
        dispatch.notify_run(m, ROLLED_BACK)
        dispatch.notify_run(m, ROLLED_BACK)
        bodies = receiver.wait_for(3)
    assert [b["title"].rsplit(" ", 1)[-1] for b in bodies] == ["old", "web", "web"]
    told = json.loads((tmp_path / "state" / dispatch.MEMORY_FILE).read_text())
    assert set(told) == {"invalid"} and set(told["invalid"]) == {"old"}


def test_an_error_that_stopped_a_run_is_told_once_a_day_per_command_and_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    away = DockerUnavailable("cannot connect to /run/docker.sock: connection refused")
    held = PartialFailure("the swarm lease is held by run 7 on mgr2")
    now = dispatch._now()
    with json_receiver() as receiver:
        m = manifest(tmp_path, receiver.url)
        dispatch.notify_error(m, "rotate", away)
        dispatch.notify_error(m, "rotate", away)  # the next hourly run: told already
        dispatch.notify_error(m, "rotate", held)
        dispatch.notify_error(m, "deploy-hook", away)
        monkeypatch.setattr(dispatch, "_now", lambda: now + dt.timedelta(hours=25))
        dispatch.notify_error(m, "rotate", away)  # a day later: told again
        bodies = receiver.wait_for(5, timeout=2.0)
    assert [b["title"].split(": ", 1)[1] for b in bodies] == [
        "rotate failed (exit 3)",
        "rotate failed (exit 4)",
        "deploy-hook failed (exit 3)",
        "rotate failed (exit 3)",
    ]
    assert bodies[0]["type"] == "failure"
    assert bodies[0]["message"].startswith("cannot connect to /run/docker.sock")


def test_an_error_is_not_told_without_failure_in_notify_on(tmp_path: Path) -> None:
    with json_receiver() as receiver:
        m = manifest(tmp_path, receiver.url, NotifyOn.SUCCESS)
        dispatch.notify_error(m, "rotate", DockerUnavailable("away"))
        assert receiver.wait_for(1, timeout=1.0) == []


def test_expiry_is_sent_for_certificates_within_warn_days_once_a_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = sample_report()  # "lonely" expires at T0, a day before the report; "web" in 89 days
    with json_receiver() as receiver:
        m = manifest(tmp_path, receiver.url, NotifyOn.EXPIRY)
        assert dispatch.notify_expiry(m, report, 14) == 1
        assert dispatch.notify_expiry(m, report, 14) == 0  # told already
        later = replace(report, now=report.now + dt.timedelta(hours=25))
        assert dispatch.notify_expiry(m, later, 14) == 1
        assert dispatch.notify_expiry(m, later, 100) == 1  # "web" now too, "lonely" not again
        bodies = receiver.wait_for(3)
    assert [b["title"] for b in bodies][-1].endswith(": web expiring")
    assert [b["type"] for b in bodies] == ["warning"] * 3


def test_expiry_needs_expiry_in_notify_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with json_receiver() as receiver:
        m = manifest(tmp_path, receiver.url, NotifyOn.FAILURE)
        assert dispatch.notify_expiry(m, sample_report(), 14) == 0
        assert receiver.bodies == []
    assert 'lacks "expiry"' in caplog.text


def test_a_failed_delivery_is_a_warning_without_the_url_and_is_not_remembered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with json_receiver(status=500) as receiver:
        m = manifest(tmp_path, receiver.url)
        dispatch.notify_run(m, SKIPPED)  # does not raise
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("phoenix_certbot")
    ]
    assert warnings and warnings[0].startswith(
        "notification to settings.notify_urls[0] (json) failed: "
    )
    assert TOKEN not in caplog.text and receiver.url not in caplog.text
    assert not (tmp_path / "state" / dispatch.MEMORY_FILE).exists()  # tried again next run
