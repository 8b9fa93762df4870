"""Faults of a real multi-node swarm (tests/harness/cluster: two managers and a worker, each
a dockerd in its own network namespace): a worker cut off mid-rollout, and two runs started
at once on the two managers.

The rules: a rollout whose worker is cut off cannot converge nor be verified as rolled back
while the partition lasts: exit 4 in bounded time; once healed, the next run completes the
rollback (the old leaf, exit 1, backing off). Two runs on two managers (different
state_dirs, as on two hosts) serialise on the swarm-wide lease: exactly one update of the
service, both runs exit 0, the second having waited and then found nothing to do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import cluster_rig
from tests.faults.rig import FaultRig
from tests.faults.runs import Running
from tests.harness.cluster import NODE_LABEL, ClusterLab

pytestmark = pytest.mark.docker
FAULTED_RUN_LIMIT_S = 240.0


@pytest.fixture
def worker_rig(
    three_node_swarm: ClusterLab,
    standin_image: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[FaultRig]:
    """A rig on the three-node swarm whose stand-in runs on the worker (its port answers on
    the worker's address); the tool talks to the first manager."""
    worker = three_node_swarm.worker
    with cluster_rig(three_node_swarm, standin_image, tmp_path, request, worker) as rig:
        rig.setup(
            update_timeout_s=15,
            constraints=[f"node.labels.{NODE_LABEL}=={worker.name}"],
        )
        yield rig


def test_a_worker_partitioned_mid_rollout(
    worker_rig: FaultRig, three_node_swarm: ClusterLab
) -> None:
    rig, worker = worker_rig, three_node_swarm.worker
    with rig.watch():
        running = rig.start("rotate", "--manifest", str(rig.manifest), "--all")
        rig.wait_updating()
        cut_at = time.time()
        with three_node_swarm.partitioned(worker):
            faulted = running.wait(FAULTED_RUN_LIMIT_S)
            rig.runs.append(faulted)
        healed_at = time.time()
        three_node_swarm.wait_ready()
        assert faulted.returncode == 4, faulted.report
        assert rig.standin.name in faulted.stdout + faulted.stderr
        assert "Traceback" not in faulted.stderr
        recovery = rig.rotate()
        settled_at = rig.undone(recovery)
    rig.conclude("worker-partitioned", faulted, recovery, settled_at,
                 partitioned_s=round(healed_at - cut_at, 1))  # fmt: skip


def test_two_runs_on_two_managers_update_the_service_once(
    worker_rig: FaultRig, three_node_swarm: ClusterLab
) -> None:
    rig = worker_rig
    first, second = three_node_swarm.managers[:2]
    # The second host: its own manifest copy and state_dir, the same swarm.
    document = json.loads(rig.manifest.read_text())
    document["settings"]["state_dir"] = str(rig.lab.root / "state-second")
    other = rig.lab.root / "manifest-second.json"
    other.write_text(json.dumps(document))
    other.chmod(0o600)
    args = ("rotate", "--all", "--manifest")
    with rig.watch():
        runs = [
            Running([*args, str(rig.manifest)], rig.env(DOCKER_HOST=first.host)),
            Running([*args, str(other)], rig.env(DOCKER_HOST=second.host)),
        ]
        done = [r.wait() for r in runs]
        rig.runs.extend(done)
        for run in done:
            assert run.returncode == 0, run.report
        settled_at = rig.settled(rig.new)
    started, ended = min(r.started for r in done), max(r.ended for r in done)
    assert rig.updates(started, ended) == 1
    waited = [r for r in done if "lease" in r.stderr.lower()]
    assert waited, "neither run says it waited for the lease"
    rig.conclude("two-managers", done[0], done[1], settled_at,
                 second_exit=done[1].returncode, both_s=round(ended - started, 1))  # fmt: skip
