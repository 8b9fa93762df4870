"""Fixtures of the status integration tests (the lab is the rotation tests' own)."""

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
