from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from phoenix_certbot.manifest.model import Source
from phoenix_certbot.rotation.converge import (
    CRASH_LIMIT,
    FAST_POLL_S,
    FAST_WINDOW_S,
    POLL_S,
    Verdict,
    crashed_of,
    evaluate,
    never_started,
    pause,
)
from phoenix_certbot.swarm.model import MountRef, ServiceState, TaskState, UpdateState
from tests.rotation.fakes import T0, deployed, digest, mount, service

NOW = T0 + dt.timedelta(minutes=5)
NEW = mount(deployed("c", digest("w", 2), Source.FULLCHAIN), "c")
OLD = mount(deployed("c", digest("w", 1), Source.FULLCHAIN), "c")


def svc(**changes: object) -> ServiceState:
    base = dataclasses.replace(service("s", NEW), monitor_s=5.0, force_update=1)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def task(
    refs: tuple[MountRef, ...] = (NEW,),
    state: str = "running",
    desired: str = "running",
    age_s: float = 60,
    force: int = 1,
    error: str = "",
) -> TaskState:
    return TaskState(
        id=f"t{age_s}{state}",
        service_id="svc-s",
        node_id="n",
        desired_state=desired,
        state=state,
        since=NOW - dt.timedelta(seconds=age_s),
        refs=refs,
        force_update=force,
        error=error,
    )


def test_running_new_tasks_past_the_monitor_period_are_done() -> None:
    assert (
        evaluate(svc(), [task(), task((OLD,), "shutdown", "shutdown")], NOW).verdict is Verdict.DONE
    )


def test_tasks_still_on_the_old_spec_are_waited_for() -> None:
    result = evaluate(svc(), [task((OLD,))], NOW)
    assert result.verdict is Verdict.WAITING and result.message.startswith("0/1 tasks")


def test_forced_update_is_recognised_by_the_force_counter() -> None:
    assert evaluate(svc(), [task(force=0)], NOW).verdict is Verdict.WAITING


def test_a_task_inside_the_monitor_period_is_not_yet_done() -> None:
    assert evaluate(svc(), [task(age_s=1)], NOW).verdict is Verdict.WAITING


START_FAILURE = (
    "starting container failed: unable to remount dir as readonly: mount tmpfs:/var/lib/"
    "docker/containers/c/mounts/secrets, flags: 0x21: device or resource busy"
)


def test_a_pause_over_new_tasks_that_never_started_is_worth_another_try() -> None:
    paused = svc(update_state=UpdateState.PAUSED, update_message="update paused due to failure")
    older = task(state="failed", age_s=3, error=START_FAILURE)
    result = evaluate(paused, [older, task(state="rejected", age_s=2, error=START_FAILURE)], NOW)
    assert result.verdict is Verdict.FAILED and result.never_started
    assert result.message.endswith(f"(task error: {START_FAILURE})")


def test_never_started_needs_a_failed_task_and_every_one_failed_to_start() -> None:
    unstarted = task(state="failed", age_s=3, error=START_FAILURE)
    exited = task(state="failed", age_s=2, error="task: non-zero exit (1)")
    new_spec = [unstarted, exited, task(), task((OLD,), "failed", error=START_FAILURE)]
    assert crashed_of(new_spec, lambda t: t.refs == (NEW,)) == [unstarted, exited]
    assert never_started([unstarted]) and not never_started([unstarted, exited])
    assert not never_started([])


@pytest.mark.parametrize(
    ("tasks", "why"),
    [
        ([task(state="failed", error="task: non-zero exit (1)")], "the new task ran and exited"),
        (
            [task(state="failed", age_s=3, error=START_FAILURE),
             task(state="failed", age_s=2, error="task: non-zero exit (1)")],
            "one new task started and crashed",
        ),
        ([task((OLD,), "failed", force=0, error=START_FAILURE)], "the old spec's task"),
        ([task()], "no failed task of the new spec"),
    ],
)  # fmt: skip
def test_a_pause_is_final_unless_every_failed_new_task_never_started(
    tasks: list[TaskState], why: str
) -> None:
    result = evaluate(svc(update_state=UpdateState.PAUSED), tasks, NOW)
    assert result.verdict is Verdict.FAILED and not result.never_started, why


def test_updating_state_waits_and_paused_or_rollback_fails() -> None:
    assert (
        evaluate(svc(update_state=UpdateState.UPDATING), [task()], NOW).verdict is Verdict.WAITING
    )
    for state in (UpdateState.PAUSED, UpdateState.ROLLBACK_STARTED, UpdateState.ROLLBACK_COMPLETED):
        result = evaluate(svc(update_state=state, update_message="task failed"), [task()], NOW)
        assert result.verdict is Verdict.FAILED and "task failed" in result.message


def test_crash_loop_of_the_new_spec_fails_even_when_swarm_says_completed() -> None:
    crashed = [
        task(state="failed", desired="shutdown", age_s=i, error="non-zero exit (1)")
        for i in range(CRASH_LIMIT)
    ]
    result = evaluate(
        svc(update_state=UpdateState.COMPLETED), [*crashed, task(state="starting", age_s=0.1)], NOW
    )
    assert result.verdict is Verdict.FAILED and "non-zero exit (1)" in result.message
    fewer = crashed[: CRASH_LIMIT - 1]
    assert evaluate(svc(), [*fewer, task(state="starting")], NOW).verdict is Verdict.WAITING


def test_old_failures_do_not_count_against_the_new_spec() -> None:
    old_crashes = [
        task((OLD,), state="failed", desired="shutdown", age_s=100 + i) for i in range(5)
    ]
    assert evaluate(svc(), [*old_crashes, task()], NOW).verdict is Verdict.DONE


def test_global_service_needs_every_active_task_current() -> None:
    g = svc(replicas=None)
    assert evaluate(g, [task(), task((OLD,))], NOW).verdict is Verdict.WAITING
    assert evaluate(g, [task(), task()], NOW).verdict is Verdict.DONE


# -- when to look next ------------------------------------------------------------------------
def test_while_tasks_start_the_next_look_is_a_poll_period_away() -> None:
    assert pause(svc(), [task((OLD,))], NOW) == POLL_S
    assert pause(svc(), [task(state="starting", age_s=0.5)], NOW) == POLL_S


def test_a_running_task_is_looked_at_again_when_its_monitor_period_ends() -> None:
    assert pause(svc(), [task(age_s=1.5)], NOW) == pytest.approx(3.5)
    # The youngest task decides: swarm completes after the last one's period.
    assert pause(svc(replicas=2), [task(age_s=4), task(age_s=1)], NOW) == pytest.approx(4)


def test_past_the_monitor_period_swarm_is_asked_often_but_not_for_long() -> None:
    assert pause(svc(), [task(age_s=5.2)], NOW) == FAST_POLL_S
    assert pause(svc(), [task(age_s=5 + FAST_WINDOW_S + 0.1)], NOW) == POLL_S


def test_a_task_clock_ahead_of_ours_delays_the_look_by_one_period_at_most() -> None:
    assert pause(svc(), [task(age_s=-30)], NOW) == 5.0
