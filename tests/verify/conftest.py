"""Fixtures of the verify tests: a two-node swarm of its own (tests/harness/two_node.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import unavailable
from tests.harness import two_node


@pytest.fixture(scope="session")
def two_node_swarm(standin_image: str) -> Iterator[two_node.TwoNodeSwarm]:
    """A manager (10.213.0.2) and a worker (10.213.0.3), each a dockerd in its own network
    namespace, the stand-in image on both; the machine's own swarm is not involved.

    Skipped without root, `ip`, `nsenter`, `dockerd` or `iptables` (a failure under
    CI=true). Setup and teardown errors are errors; so is anything left behind.
    """
    problem = two_node.prerequisites_problem()
    if problem:
        unavailable(problem)
    try:
        with two_node.two_node_swarm(standin_image) as cluster:
            yield cluster
    except two_node.Busy as exc:  # raised before setup, never after the yield
        unavailable(str(exc))
    print(f"\ntwo-node swarm: {cluster.describe_timings()}")  # shown with -s
