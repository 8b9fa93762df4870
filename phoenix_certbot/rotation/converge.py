"""Has a service converged after an update? Pure: service and task values in, a verdict out.

Mirrors what `docker service update` waits for, and a little more: swarm's own update state
must be final (not updating, not rolling back), every task that should run carries the
service's spec and runs, and has kept running for the service's monitor period. The caller
makes sure the spec is the one it wrote (`spec_match`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from phoenix_certbot.swarm.model import MountRef, ServiceState, TaskState, UpdateState


class Verdict(str, Enum):
    DONE = "done"
    WAITING = "waiting"
    FAILED = "failed"
    CONFLICT = "conflict"  # someone else changed the service: not ours to judge any more


@dataclass(frozen=True)
class Convergence:
    verdict: Verdict
    message: str
    running: int = 0
    wanted: int = 0
    # FAILED only because tasks of the new spec never started (dockerd could not start
    # the container): no certificate causes that, so the update is worth one more try.
    never_started: bool = False


def _mounts(refs: Sequence[MountRef]) -> frozenset[tuple[str, str, str]]:
    return frozenset((m.kind.value, m.object_name, m.target) for m in refs)


CRASH_LIMIT = 3
POLL_S = 0.5  # while tasks start: nothing to decide sooner
FAST_POLL_S = 0.05  # around the end of the monitor period, when swarm completes the update
FAST_WINDOW_S = 1.0  # at most this long past the monitor period (clocks may disagree)
_CRASHED = frozenset({"failed", "rejected"})
# The error swarm gives a task whose container the engine could not start (moby's executor
# wraps the start error so): the container never ran the service's code.
START_FAILED = "starting container failed"


def _is_current(
    task: TaskState, service: ServiceState, mounts: frozenset[tuple[str, str, str]]
) -> bool:
    return _mounts(task.refs) == mounts and task.force_update == service.force_update


_SWARM_ROLLBACK = frozenset({UpdateState.ROLLBACK_STARTED, UpdateState.ROLLBACK_COMPLETED})


def evaluate(
    service: ServiceState,
    tasks: Sequence[TaskState],
    now: dt.datetime,
    *,
    swarm_rollback: bool = False,
) -> Convergence:
    """`swarm_rollback`: the spec is the one before our update because swarm rolled our
    update back by itself (failure_action: rollback); its rollback is then what we wait for."""
    update = service.update_state
    wanted_mounts = _mounts(service.refs)
    if update.failed and not (swarm_rollback and update in _SWARM_ROLLBACK):
        detail = f": {service.update_message}" if service.update_message else ""
        crashed = _crashed(tasks, service, wanted_mounts)
        if crashed and crashed[-1].error:
            detail += f" (task error: {crashed[-1].error})"
        return Convergence(
            Verdict.FAILED,
            f"swarm update {update.value}{detail}",
            never_started=never_started(crashed),
        )
    active = [t for t in tasks if t.desired_state == "running"]
    current = [t for t in active if _is_current(t, service, wanted_mounts)]
    running = [t for t in current if t.state == "running"]
    wanted = service.replicas if service.replicas is not None else max(len(active), 1)
    progress = f"{len(running)}/{wanted} tasks running the new spec"
    if not update.final:
        return Convergence(
            Verdict.WAITING, f"swarm update {update.value}, {progress}", len(running), wanted
        )
    if len(running) < wanted or len(active) > len(current):
        # Swarm reports "completed" when failure_action is "continue" even while the new
        # tasks crash: a crash loop of the new spec is a failure we must see ourselves.
        crashed = _crashed(tasks, service, wanted_mounts)
        if len(crashed) >= CRASH_LIMIT:
            return Convergence(
                Verdict.FAILED,
                f"new tasks failed {len(crashed)} times (last error: "
                f"{crashed[-1].error or crashed[-1].state})",
                len(running),
                wanted,
            )
        detail = f" (last error: {crashed[-1].error})" if crashed and crashed[-1].error else ""
        return Convergence(Verdict.WAITING, progress + detail, len(running), wanted)
    young = [t for t in running if (now - t.since).total_seconds() < service.monitor_s]
    if young:
        return Convergence(
            Verdict.WAITING,
            f"{progress}, within the {service.monitor_s:g} s monitor period",
            len(running),
            wanted,
        )
    return Convergence(Verdict.DONE, progress, len(running), wanted)


def _crashed(
    tasks: Sequence[TaskState], service: ServiceState, mounts: frozenset[tuple[str, str, str]]
) -> list[TaskState]:
    """The failed or rejected tasks of the service's current spec, oldest first."""
    return crashed_of(tasks, lambda t: _is_current(t, service, mounts))


def crashed_of(tasks: Sequence[TaskState], of_spec: Callable[[TaskState], bool]) -> list[TaskState]:
    """The failed or rejected tasks that `of_spec` says run one spec, oldest first."""
    return sorted((t for t in tasks if t.state in _CRASHED and of_spec(t)), key=lambda t: t.since)


def never_started(crashed: Sequence[TaskState]) -> bool:
    """Every one of these failed tasks failed before its container ran (and there is one)."""
    return bool(crashed) and all(t.error.startswith(START_FAILED) for t in crashed)


def pause(service: ServiceState, tasks: Sequence[TaskState], now: dt.datetime) -> float:
    """Seconds until the next look at a service that is still WAITING.

    Swarm completes an update one monitor period after its last new task started running:
    nothing to see before then, and then the sooner the better, so the look comes when
    the youngest running task's period ends and again every FAST_POLL_S, for at most
    FAST_WINDOW_S past it. While tasks are still starting, every POLL_S."""
    wanted_mounts = _mounts(service.refs)
    active = [t for t in tasks if t.desired_state == "running"]
    current = [t for t in active if _is_current(t, service, wanted_mounts)]
    running = [t for t in current if t.state == "running"]
    wanted = service.replicas if service.replicas is not None else max(len(active), 1)
    if not running or len(running) < wanted or len(active) > len(current):
        return POLL_S
    youngest = max(t.since for t in running)
    left = service.monitor_s - (now - youngest).total_seconds()
    if left > 0:
        # A task clock ahead of ours cannot make us wait longer than a whole period.
        return max(FAST_POLL_S, min(left, service.monitor_s))
    return FAST_POLL_S if left > -FAST_WINDOW_S else POLL_S
