"""Fixtures of the rotation integration tests; the helpers themselves are in `lab.py`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.harness.resources import Resources
from tests.rotation.lab import Lab


@pytest.fixture
def lab(
    docker_client: docker.DockerClient, resources: Resources, standin_image: str, tmp_path: Path
) -> Iterator[Lab]:
    """A lab for one test; what the tool created is handed to `resources` to remove."""
    lab = Lab(docker_client, resources, standin_image, tmp_path)
    yield lab
    lab.track_created()  # runs before `resources` cleans up: it was set up first


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
