"""`summarize`: the one conversion of a rotation Outcome for notifications."""

from __future__ import annotations

from phoenix_certbot.notify.model import Event, EventKind, RunSummary
from phoenix_certbot.notify.outcome import nothing_valid, summarize
from phoenix_certbot.rotation.outcome import Outcome, ServiceOutcome, ServiceResult
from phoenix_certbot.rotation.plan import Plan

EMPTY = Plan((), (), (), (), (), ())


def test_each_certificate_of_each_service_is_one_event_with_its_detail() -> None:
    outcome = Outcome(
        plan=EMPTY,
        services=(
            ServiceOutcome("prod_web", ("web", "api"), ServiceResult.UPDATED, "converged"),
            ServiceOutcome(
                "prod_gw", ("api",), ServiceResult.ROLLED_BACK, "verification failed: x"
            ),
            ServiceOutcome("prod_db", ("db",), ServiceResult.ROLLBACK_FAILED, "did not converge"),
            ServiceOutcome("prod_q", ("q",), ServiceResult.CONFLICT, "boom"),
        ),
        recovered=(ServiceOutcome("prod_x", ("x",), ServiceResult.ROLLED_BACK, "interrupted"),),
    )
    assert summarize(outcome).events == (
        Event("x", "prod_x", EventKind.ROLLED_BACK, "interrupted"),
        Event("web", "prod_web", EventKind.ROTATED, "converged"),
        Event("api", "prod_web", EventKind.ROTATED, "converged"),
        Event("api", "prod_gw", EventKind.ROLLED_BACK, "verification failed: x"),
        Event("db", "prod_db", EventKind.ROLLBACK_FAILED, "did not converge"),
        Event("q", "prod_q", EventKind.UPDATE_FAILED, "boom"),
    )


def test_recovery_that_only_put_back_our_work_or_found_a_deploy_is_no_event() -> None:
    outcome = Outcome(
        plan=EMPTY,
        recovered=(
            ServiceOutcome("prod_a", ("a",), ServiceResult.UNDONE, "files put back"),
            ServiceOutcome("prod_b", ("b",), ServiceResult.SUPERSEDED, "left as it is"),
        ),
        services=(ServiceOutcome("prod_a", ("a",), ServiceResult.UPDATED, "converged"),),
    )
    assert summarize(outcome).events == (Event("a", "prod_a", EventKind.ROTATED, "converged"),)


def test_a_certificate_skipped_as_invalid_carries_its_reason() -> None:
    outcome = Outcome(
        plan=EMPTY,
        skipped=("old",),
        errors=("certificate old skipped: /le/live/old/cert.pem: expired", "other error"),
    )
    assert summarize(outcome).events == (
        Event("old", "", EventKind.SKIPPED_INVALID, "/le/live/old/cert.pem: expired"),
    )


def test_a_run_that_touched_nothing_has_no_event() -> None:
    assert summarize(Outcome(plan=EMPTY)) == RunSummary()


def test_a_run_with_no_valid_certificate_is_one_skipped_event_each() -> None:
    summary = nothing_valid(
        {"a": "certificate a skipped: /le/live/a/cert.pem: expired", "b": "b: odd line"}
    )
    assert summary.events == (
        Event("a", "", EventKind.SKIPPED_INVALID, "/le/live/a/cert.pem: expired"),
        Event("b", "", EventKind.SKIPPED_INVALID, "b: odd line"),
    )
    assert summary.failures == summary.events
