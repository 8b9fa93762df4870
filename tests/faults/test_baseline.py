"""No fault: the row every other row is measured against (same rig, same checks)."""

from __future__ import annotations

import pytest

from tests.faults.rig import FaultRig

pytestmark = pytest.mark.docker


def test_no_fault_rotates_once_and_holds_the_invariant(rig: FaultRig) -> None:
    rig.setup()
    with rig.watch():
        run = rig.rotate()
        assert run.returncode == 0, run.report
        settled_at = rig.settled(rig.new)
    assert rig.updates(run.started, run.ended) == 1
    rig.conclude("baseline", run, run, settled_at)
