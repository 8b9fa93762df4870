"""The engine cannot start the new task's container (Engine 20.10 sometimes fails to mount a
task's secrets: "starting container failed: unable to remount dir as readonly ... device
or resource busy", moby/moby#48783). A one-node swarm of its own whose runtime fails the
next start on purpose (tests/harness/cluster/node.py), never the shared daemon.

The rule: a container that never started says nothing about the certificate, so the run
sends the update to swarm once more (unchanged, which clears swarm's paused update) and
goes on waiting within the same deadline; the new certificate is then served and the run
exits 0. Swarm's own update was paused by the failure, so without that second send the run
rolled back and exited 1, and the timer backed off for an hour.
"""

from __future__ import annotations

import pytest

from tests.faults.rig import FaultRig
from tests.harness.cluster import ClusterLab

pytestmark = pytest.mark.docker
UPDATE_TIMEOUT_S = 60


def test_a_new_container_that_never_started_gets_the_update_sent_once_more(
    private_rig: FaultRig, private_swarm: ClusterLab
) -> None:
    rig, node = private_rig, private_swarm.manager
    rig.setup(update_timeout_s=UPDATE_TIMEOUT_S)
    with rig.watch():
        node.fail_starts(1)
        faulted = rig.rotate()
        assert node.starts_to_fail() == 0, "the start failure never happened"
        assert faulted.returncode == 0, faulted.report
        assert "starting container failed" in faulted.stderr, faulted.report
        assert "sending the update to swarm again, once" in faulted.stderr, faulted.report
        assert rig.update_state() != "paused"
        settled_at = rig.settled(rig.new)
        # The update and its second send; the next run has nothing left to do.
        assert rig.updates(faulted.started, faulted.ended) == 2
        recovery = rig.rotate()
        assert recovery.returncode == 0, recovery.report
        assert rig.updates(recovery.started, recovery.ended) == 0
    assert rig.status()["web"]["failures"] == 0
    rig.conclude("start-failed-once", faulted, recovery, settled_at)
