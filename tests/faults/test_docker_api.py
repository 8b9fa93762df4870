"""A Docker API that stops answering (tests/support/stall_proxy.py between the tool and the
shared daemon; the daemon itself is never touched). The test stalls it at an exact point.

The rules: stalled before anything changed, the run ends (bounded) with exit 3, nothing
changed. Stalled once the service update was sent (whether or not its answer came back),
the outcome is unknown: it is treated as failed and rolled back, and a run that cannot
restore a verified state (the API still stalled) ends with exit 4, never 3, in bounded
time. The next run, with the API answering, completes that rollback: the old leaf, exit 1,
the leaf backing off.
"""

from __future__ import annotations

import pytest

from tests.faults.conftest import DOCKER_TIMEOUT_S, hung_run_bound_s
from tests.faults.rig import FaultRig
from tests.faults.runs import Run
from tests.support.stall_proxy import StallingProxy

pytestmark = pytest.mark.docker
# Kills a run that hangs for good; the bounds the tests assert are much tighter.
STALLED_RUN_LIMIT_S = 240.0
UPDATE_TIMEOUT_S = 30


def _service_update(method: str, path: str) -> bool:
    return (
        method == "POST"
        and "/services/" in path
        and path.split("?", maxsplit=1)[0].endswith("/update")
    )


def _stalling(rig: FaultRig) -> StallingProxy:
    """A proxy that stalls, in front of the rig's recording one (which sees what passes)."""
    assert rig.proxy is not None
    return StallingProxy(str(rig.proxy.path))


def _stalled_run(rig: FaultRig, proxy: StallingProxy) -> Run:
    env = rig.env(DOCKER_HOST=proxy.docker_host)
    return rig.run("rotate", "--manifest", str(rig.manifest), "--all", env=env,
                   timeout=STALLED_RUN_LIMIT_S)  # fmt: skip


def test_an_api_stalled_from_the_start_ends_with_exit_3_and_changes_nothing(
    rig: FaultRig,
) -> None:
    rig.setup(update_timeout_s=UPDATE_TIMEOUT_S, docker_timeout_s=DOCKER_TIMEOUT_S)
    with rig.watch():
        with _stalling(rig) as proxy:
            proxy.stall()
            stalled = _stalled_run(rig, proxy)
        assert stalled.returncode == 3, stalled.report
        # Connecting is the first request: one docker_timeout_s, plus the process's start
        # on a busy machine (with the 30 s default it took 33 s).
        assert stalled.seconds <= DOCKER_TIMEOUT_S + 15, stalled.report
        assert "Traceback" not in stalled.stderr
        assert rig.lab.managed(rig.standin.cert_base) == []
        recovery = rig.rotate()
        assert recovery.returncode == 0, recovery.report
        settled_at = rig.settled(rig.new)
    assert rig.updates(stalled.started, stalled.ended) == 0
    assert rig.updates(recovery.started, recovery.ended) == 1
    rig.conclude("api-stalled-at-start", stalled, recovery, settled_at)


@pytest.mark.parametrize("answer", ["delivered", "held"])
def test_an_api_stalled_after_the_update_ends_with_exit_4_and_the_next_run_resolves(
    rig: FaultRig, answer: str
) -> None:
    """`delivered`: the update's answer came back, then every request hangs (during the
    convergence wait). `held`: the update was done by swarm but its answer never came."""
    rig.setup(update_timeout_s=UPDATE_TIMEOUT_S, docker_timeout_s=DOCKER_TIMEOUT_S)
    with rig.watch():
        with _stalling(rig) as proxy:
            proxy.stall_after(_service_update, in_flight=answer == "held")
            stalled = _stalled_run(rig, proxy)
            stalled_at = proxy.wait_stalled(0)
        assert stalled.returncode == 4, stalled.report
        assert stalled.seconds <= hung_run_bound_s(UPDATE_TIMEOUT_S), stalled.report
        assert rig.standin.name in stalled.stdout + stalled.stderr
        assert "Traceback" not in stalled.stderr
        recovery = rig.rotate()
        settled_at = rig.undone(recovery)
    assert rig.updates(stalled.started, recovery.ended) == 2  # the update and its rollback
    rig.conclude(
        f"api-stalled-after-update:{answer}",
        stalled,
        recovery,
        settled_at,
        stalled_for_s=round(stalled.ended - stalled_at, 1),
    )
