"""The run's result from its services and checks (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from phoenix_certbot.rotation.outcome import (
    CheckOutcome,
    Outcome,
    RunResult,
    ServiceOutcome,
    ServiceResult,
    Waiting,
)
from phoenix_certbot.rotation.plan import Check, Plan

EMPTY = Plan((), (), (), (), (), ())
CHECK = Check("web", "https://127.0.0.1:1/", "web.test", "a" * 64)


def service(result: ServiceResult, cert: str = "web") -> ServiceOutcome:
    return ServiceOutcome("s", (cert,), result)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome(EMPTY), RunResult.OK),
        (Outcome(EMPTY, services=(service(ServiceResult.UPDATED),)), RunResult.OK),
        (Outcome(EMPTY, services=(service(ServiceResult.ROLLED_BACK),)), RunResult.FAILED),
        # Recovery that found someone else's deploy, or put back our own work that never
        # reached the service, is reported but fails nothing; a rolled-back rollout does.
        (Outcome(EMPTY, recovered=(service(ServiceResult.SUPERSEDED),)), RunResult.OK),
        (Outcome(EMPTY, recovered=(service(ServiceResult.UNDONE),)), RunResult.OK),
        (Outcome(EMPTY, recovered=(service(ServiceResult.UPDATED),)), RunResult.OK),
        (Outcome(EMPTY, recovered=(service(ServiceResult.ROLLED_BACK),)), RunResult.FAILED),
        (Outcome(EMPTY, services=(service(ServiceResult.SUPERSEDED),)), RunResult.FAILED),
        (Outcome(EMPTY, services=(service(ServiceResult.ROLLBACK_FAILED),)), RunResult.PARTIAL),
        (Outcome(EMPTY, services=(service(ServiceResult.CONFLICT),)), RunResult.PARTIAL),
        (Outcome(EMPTY, recovered=(service(ServiceResult.CONFLICT),)), RunResult.PARTIAL),
        (
            Outcome(EMPTY, waiting=(Waiting("web", 1, dt.datetime.now(dt.timezone.utc)),)),
            RunResult.FAILED,
        ),
        # A URL that failed before the run and still fails: reported, exit 1, no rollback.
        (
            Outcome(
                EMPTY,
                services=(service(ServiceResult.UPDATED),),
                checks=(CheckOutcome(CHECK, False, None, None, "refused", 3, "refused", True),),
            ),
            RunResult.FAILED,
        ),
    ],
)
def test_the_run_result(outcome: Outcome, expected: RunResult) -> None:
    assert outcome.result is expected
    assert outcome.exit_code == expected.value


def test_only_a_rolled_back_rollout_counts_against_the_leaf() -> None:
    outcome = Outcome(
        EMPTY,
        services=(
            service(ServiceResult.ROLLED_BACK, "a"),
            service(ServiceResult.ROLLBACK_FAILED, "b"),
            service(ServiceResult.CONFLICT, "c"),
            service(ServiceResult.UPDATED, "d"),
        ),
        checks=(CheckOutcome(CHECK, False, None, None, "refused", 3, "refused", True),),
    )
    assert outcome.rolled_back_certs() == {"a", "b"}
    assert outcome.failed_certs() == {"a", "b", "c"}  # a waived check fails nothing
