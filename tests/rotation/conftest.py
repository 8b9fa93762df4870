"""Fixtures of the rotation integration tests (`lab` itself is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.harness.resources import Resources
from tests.rotation.lab import Lab


@pytest.fixture(scope="module")
def module_lab(
    docker_client: docker.DockerClient,
    standin_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lab]:
    """A lab shared by the tests of one module, for setup that they do not change."""
    tracker = Resources(docker_client)
    lab = Lab(docker_client, tracker, standin_image, tmp_path_factory.mktemp("lab"))
    try:
        yield lab
    finally:
        lab.track_created()
        problems = tracker.cleanup()
        if problems:
            pytest.fail("could not remove test resources: " + "; ".join(problems), pytrace=False)
