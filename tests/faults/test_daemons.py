"""The Docker daemon itself fails during the convergence wait: stopped (SIGTERM: it stops its
containers too) or frozen (SIGSTOP of dockerd and containerd: containers run on). A one-node
swarm of its own (tests/harness/cluster), never the shared daemon.

The rule: once the update was accepted, an error or a timeout from Docker is an unknown
outcome, treated as failed; the rollback cannot be done or verified while the daemon is
away, so the run ends in bounded time with exit 4, never 3. The next run, with the daemon
back, completes that rollback: the old leaf, exit 1, the leaf backing off.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import DOCKER_TIMEOUT_S, hung_run_bound_s
from tests.faults.rig import FaultRig
from tests.faults.runs import Run
from tests.harness.cluster import ClusterLab

pytestmark = pytest.mark.docker
FAULTED_RUN_LIMIT_S = 240.0  # kills a run that hangs for good; the asserted bound is tighter
UPDATE_TIMEOUT_S = 20


def _next_run_settles(rig: FaultRig) -> tuple[Run, float]:
    recovery = rig.rotate()
    return recovery, rig.undone(recovery)


def test_daemon_stopped_during_the_convergence_wait(
    private_rig: FaultRig, private_swarm: ClusterLab
) -> None:
    rig, node = private_rig, private_swarm.manager
    rig.setup(update_timeout_s=UPDATE_TIMEOUT_S, docker_timeout_s=DOCKER_TIMEOUT_S)
    with rig.watch() as watch:
        running = rig.start("rotate", "--manifest", str(rig.manifest), "--all")
        rig.wait_updating()
        watch.daemon_stops.append(time.time())
        with private_swarm.stopped(node):
            faulted = running.wait(FAULTED_RUN_LIMIT_S)
            rig.runs.append(faulted)
        back_at = time.time()
        assert faulted.returncode == 4, faulted.report
        assert faulted.seconds <= hung_run_bound_s(UPDATE_TIMEOUT_S), faulted.report
        assert "Traceback" not in faulted.stderr
        recovery, settled_at = _next_run_settles(rig)
    rig.conclude("daemon-stopped", faulted, recovery, settled_at,
                 daemon_down_s=round(back_at - watch.daemon_stops[0], 1))  # fmt: skip


def test_daemon_frozen_during_the_convergence_wait(
    private_rig: FaultRig, private_swarm: ClusterLab
) -> None:
    rig, node = private_rig, private_swarm.manager
    rig.setup(update_timeout_s=UPDATE_TIMEOUT_S, docker_timeout_s=DOCKER_TIMEOUT_S)
    with rig.watch():
        running = rig.start("rotate", "--manifest", str(rig.manifest), "--all")
        rig.wait_updating()
        frozen_at = time.time()
        with private_swarm.frozen(node):
            faulted = running.wait(FAULTED_RUN_LIMIT_S)
            rig.runs.append(faulted)
        thawed_at = time.time()
        assert faulted.returncode == 4, faulted.report
        assert faulted.seconds <= hung_run_bound_s(UPDATE_TIMEOUT_S), faulted.report
        assert "Traceback" not in faulted.stderr
        recovery, settled_at = _next_run_settles(rig)
    rig.conclude("daemon-frozen", faulted, recovery, settled_at,
                 frozen_s=round(thawed_at - frozen_at, 1))  # fmt: skip
