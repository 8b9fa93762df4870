"""Fixtures of the fault matrix (issue 8): a `FaultRig` on the shared swarm or on a cluster
lab."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.faults.rig import FaultRig
from tests.harness.cluster import ClusterLab, Node
from tests.harness.resources import Resources
from tests.rotation.lab import Lab

# `settings.docker_timeout_s` of the rows that stall or freeze Docker: each request that
# gets no answer ends after 5 s (the default 30 s made such a row take two minutes).
DOCKER_TIMEOUT_S = 5.0


def hung_run_bound_s(update_timeout_s: float, docker_timeout_s: float = DOCKER_TIMEOUT_S) -> float:
    """The longest a run may take when Docker stops answering after the update, as
    docs/manifest.md promises: the convergence wait and the rollback each within the update
    timeout plus one hung request, and a few hung requests around them (settle, the lease's
    release and renewal). A run that ignored `docker_timeout_s` (30 s a request) overran it."""
    return 2 * (update_timeout_s + docker_timeout_s) + 4 * docker_timeout_s


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Each phase's report on the item, for fixtures to see whether the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _finish(rig: FaultRig, request: pytest.FixtureRequest) -> None:
    call = getattr(request.node, "report_call", None)
    if call is not None and (call.failed or hasattr(call, "wasxfail")):
        rig.record_failed(request.node.name)
    rig.close()


@pytest.fixture
def rig(lab: Lab, request: pytest.FixtureRequest) -> Iterator[FaultRig]:
    """A rig on the shared swarm; the row calls `rig.setup(...)` with its own service."""
    rig = FaultRig(lab)
    yield rig
    _finish(rig, request)


# -- rigs on a cluster lab (tests/harness/cluster): daemons a test may stop, freeze, cut off --
@contextlib.contextmanager
def cluster_rig(
    cluster: ClusterLab,
    image: str,
    root: Path,
    request: pytest.FixtureRequest,
    serving_node: Node | None = None,
) -> Iterator[FaultRig]:
    """A rig whose tool and checks talk to the lab's first manager; the service runs on
    `serving_node` (placed there by the row) and answers on its address."""
    manager = cluster.manager
    client = cluster.client(manager)
    resources = Resources(client)
    lab = Lab(
        client,
        resources,
        image,
        root,
        address=(serving_node or manager).address,
        docker_host=manager.host,
    )
    rig = FaultRig(lab)
    try:
        yield rig
    finally:
        _finish(rig, request)
        lab.close()
        lab.track_created()
        problems = resources.cleanup()
        if problems:
            pytest.fail("could not remove test resources: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def private_rig(
    private_swarm: ClusterLab, standin_image: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[FaultRig]:
    """A rig on a one-node swarm of its own (a dockerd the row may stop or freeze)."""
    with cluster_rig(private_swarm, standin_image, tmp_path, request) as rig:
        yield rig
